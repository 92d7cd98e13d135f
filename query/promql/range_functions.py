"""The functions of a range vector, per series and step, exactly as Prometheus 2.42 computes
them (design §3.3 and its Appendix A, which matched 2.42 to the last bit).

``points`` are one series' non-stale samples ``(t_ms, value)`` in ``[ref - range, ref]``;
each function returns the value, or None where Prometheus outputs nothing for the step.
"""

from __future__ import annotations

from collections.abc import Callable


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


RangeFunction = Callable[[list[tuple[int, float]], int, int], float | None]
RANGE_FUNCTIONS: dict[str, RangeFunction] = {
    "rate": lambda p, ref, r: extrapolated(p, ref, r, counter=True, per_second=True),
    "increase": lambda p, ref, r: extrapolated(p, ref, r, counter=True, per_second=False),
    "delta": lambda p, ref, r: extrapolated(p, ref, r, counter=False, per_second=False),
    "irate": lambda p, ref, r: instant_change(p, per_second=True),
    "idelta": lambda p, ref, r: instant_change(p, per_second=False),
}

__all__ = ["RANGE_FUNCTIONS", "extrapolated", "instant_change"]
