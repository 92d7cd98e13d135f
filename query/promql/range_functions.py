"""The functions of a range vector, per series and step, exactly as Prometheus 2.42 computes
them (design §3.3 and its Appendix A, which matched 2.42 to the last bit): the extrapolated
rate family, irate/idelta, every ``*_over_time`` with Prometheus' compensated sums,
``changes``/``resets``, ``deriv``/``predict_linear`` and ``holt_winters``.

``points`` are one series' non-stale samples ``(t_ms, value)`` in ``[ref - range, ref]``;
each function returns the value, or None where Prometheus outputs nothing for the step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .aggregate import quantile


def extrapolated(points: list[tuple[int, float]], ref: int, range_ms: int, counter: bool,
                 per_second: bool) -> float | None:
    """``rate`` (counter, per second), ``increase`` (counter) and ``delta`` (neither)."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if counter:
        previous = first_v
        for _, v in points[1:]:
            if v < previous:  # a reset: the counter restarted from 0
                result += previous
            previous = v
    to_start = (first_t - (ref - range_ms)) / 1000
    to_end = (ref - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (len(points) - 1)
    if counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    if per_second:
        factor /= range_ms / 1000
    return result * factor


def instant_change(points: list[tuple[int, float]], per_second: bool) -> float | None:
    """``irate`` (per second, a drop read as a reset) and ``idelta``: from the last two."""
    if len(points) < 2:
        return None
    (t_a, a), (t_b, b) = points[-2], points[-1]
    result = b if per_second and b < a else b - a
    if not per_second:
        return result
    if t_b == t_a:
        return None
    return result / ((t_b - t_a) / 1000)




def _kahan(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Prometheus' compensated sum (``kahanSumInc``)."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def sum_over_time(values: list[float]) -> float:
    total = c = 0.0
    for v in values:
        total, c = _kahan(v, total, c)
    return total if math.isinf(total) else total + c


def avg_over_time(values: list[float]) -> float:
    mean = count = c = 0.0
    for v in values:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, c = _kahan(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def variance_over_time(values: list[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in values:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan(delta / count, mean, c_mean)
        aux, c_aux = _kahan(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def extreme_over_time(values: list[float], largest: bool) -> float:
    best = values[0]
    for v in values:
        if (v > best if largest else v < best) or math.isnan(best):
            best = v
    return best


def changes(values: list[float]) -> float:
    return float(sum(1 for a, b in zip(values, values[1:], strict=False)
                     if b != a and not (math.isnan(a) and math.isnan(b))))


def resets(values: list[float]) -> float:
    return float(sum(1 for a, b in zip(values, values[1:], strict=False) if b < a))


def linear_regression(points: list[tuple[int, float]], intercept_ms: int
                      ) -> tuple[float, float]:
    """Least squares slope and intercept (at ``intercept_ms``) with compensated sums."""
    n = sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    first = points[0][1]
    constant = True
    for i, (t, v) in enumerate(points):
        if constant and i > 0 and v != first:
            constant = False
        n += 1
        x = (t - intercept_ms) / 1e3
        sx, cx = _kahan(x, sx, cx)
        sy, cy = _kahan(v, sy, cy)
        sxy, cxy = _kahan(x * v, sxy, cxy)
        sx2, cx2 = _kahan(x * x, sx2, cx2)
    if constant:
        return (math.nan, math.nan) if math.isinf(first) else (0.0, first)
    sx += cx
    sy += cy
    sxy += cxy
    sx2 += cx2
    covariance = sxy - sx * sy / n
    variance = sx2 - sx * sx / n
    slope = covariance / variance
    return slope, sy / n - slope * sx / n


def holt_winters(values: list[float], sf: float, tf: float) -> float | None:
    if len(values) < 2:
        return None
    s0, s1, b = 0.0, values[0], values[1] - values[0]
    for i in range(1, len(values)):
        x = sf * values[i]
        if i - 1 != 0:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


class BadArgument(Exception):
    """An argument Prometheus refuses at evaluation (``execution``)."""


def _holt_winters(points: list[tuple[int, float]], args: list[float]) -> float | None:
    sf, tf = args
    if sf <= 0 or sf >= 1:
        raise BadArgument(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if tf <= 0 or tf >= 1:
        raise BadArgument(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    return holt_winters([v for _, v in points], sf, tf)


def _values(f: Callable[[list[float]], float]) -> PointsFunction:
    return lambda points, ref, range_ms, ts, args: f([v for _, v in points])


def _at_least_two(f: Callable[[list[tuple[int, float]], int], float]) -> PointsFunction:
    return lambda points, ref, range_ms, ts, args: f(points, ts) if len(points) >= 2 else None


# (points, ref, range_ms, step ts, the scalar arguments) -> the value or None
PointsFunction = Callable[[list[tuple[int, float]], int, int, int, list[float]], float | None]


@dataclass(frozen=True)
class RangeFunction:
    compute: PointsFunction
    matrix_arg: int = 0  # which argument is the range vector; the others are scalars
    keeps_name: bool = False


def _predict_linear(points: list[tuple[int, float]], ref: int, range_ms: int, ts: int,
                    args: list[float]) -> float | None:
    if len(points) < 2:
        return None
    slope, intercept = linear_regression(points, ts)  # at the step's time, as 2.42
    return slope * args[0] + intercept


RANGE_FUNCTIONS: dict[str, RangeFunction] = {
    "rate": RangeFunction(lambda p, ref, r, ts, a: extrapolated(p, ref, r, True, True)),
    "increase": RangeFunction(lambda p, ref, r, ts, a: extrapolated(p, ref, r, True, False)),
    "delta": RangeFunction(lambda p, ref, r, ts, a: extrapolated(p, ref, r, False, False)),
    "irate": RangeFunction(lambda p, ref, r, ts, a: instant_change(p, True)),
    "idelta": RangeFunction(lambda p, ref, r, ts, a: instant_change(p, False)),
    "sum_over_time": RangeFunction(_values(sum_over_time)),
    "avg_over_time": RangeFunction(_values(avg_over_time)),
    "count_over_time": RangeFunction(_values(lambda v: float(len(v)))),
    "min_over_time": RangeFunction(_values(lambda v: extreme_over_time(v, largest=False))),
    "max_over_time": RangeFunction(_values(lambda v: extreme_over_time(v, largest=True))),
    "last_over_time": RangeFunction(_values(lambda v: v[-1]), keeps_name=True),
    "present_over_time": RangeFunction(_values(lambda v: 1.0)),
    "stdvar_over_time": RangeFunction(_values(variance_over_time)),
    "stddev_over_time": RangeFunction(_values(lambda v: math.sqrt(variance_over_time(v)))),
    "quantile_over_time": RangeFunction(
        lambda p, ref, r, ts, a: quantile(a[0], [v for _, v in p]), matrix_arg=1),
    "changes": RangeFunction(_values(changes)),
    "resets": RangeFunction(_values(resets)),
    "deriv": RangeFunction(_at_least_two(lambda p, ts: linear_regression(p, p[0][0])[0])),
    "predict_linear": RangeFunction(_predict_linear),
    "holt_winters": RangeFunction(lambda p, ref, r, ts, a: _holt_winters(p, a)),
}

__all__ = ["BadArgument", "RANGE_FUNCTIONS", "RangeFunction", "extrapolated", "instant_change"]
