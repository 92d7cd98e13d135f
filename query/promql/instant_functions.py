"""Functions of instant vectors and scalars, as Prometheus 2.42 computes them (design §3.3):
elementwise math (dropping ``__name__``), ``round``, the ``clamp`` family with Go's
``math.Max``/``Min`` (NaN wins), ``sgn``, ``timestamp``, ``scalar``, ``sort``/``sort_desc``
(NaN last both ways), ``absent`` and the date functions (UTC).

The elementwise functions use Python's ``math`` (the C library): ``exp``, ``ln``, the
logarithms and the trigonometric ones may differ from Go's own implementations in the last
bit now and then, as the design notes; everything else is exact.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable

from . import nodes
from .binary import drop_name
from .values import Labels, Sample


def _guard(f: Callable[[float], float], outside: Callable[[float], float]
           ) -> Callable[[float], float]:
    """``f``, answering Go's value (NaN, ±Inf) where Python raises."""
    def apply(v: float) -> float:
        try:
            return f(v)
        except (ValueError, OverflowError):
            return outside(v)
    return apply


def _log(f: Callable[[float], float]) -> Callable[[float], float]:
    return _guard(f, lambda v: -math.inf if v == 0 else math.nan)


def _go_divide(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _go_floor(v: float) -> float:
    """Go's ``math.Floor`` (and ``Ceil``): infinities and NaN as they are, a zero keeps the
    sign of ``v`` (``ceil(-0.4)`` is ``-0``)."""
    if not math.isfinite(v):
        return v
    result = float(math.floor(v))
    return math.copysign(result, v) if result == 0 else result


def _go_ceil(v: float) -> float:
    if not math.isfinite(v):
        return v
    result = float(math.ceil(v))
    return math.copysign(result, v) if result == 0 else result


def sgn(v: float) -> float:
    if v < 0:
        return -1.0
    if v > 0:
        return 1.0
    return v


MATH: dict[str, Callable[[float], float]] = {
    "abs": abs, "ceil": _go_ceil, "floor": _go_floor,
    "exp": _guard(math.exp, lambda v: math.inf), "sqrt": _guard(math.sqrt, lambda v: math.nan),
    "ln": _log(math.log), "log2": _log(math.log2), "log10": _log(math.log10),
    "sin": _guard(math.sin, lambda v: math.nan), "cos": _guard(math.cos, lambda v: math.nan),
    "tan": _guard(math.tan, lambda v: math.nan), "asin": _guard(math.asin, lambda v: math.nan),
    "acos": _guard(math.acos, lambda v: math.nan), "atan": math.atan,
    "sinh": _guard(math.sinh, lambda v: math.copysign(math.inf, v)),
    "cosh": _guard(math.cosh, lambda v: math.inf), "tanh": math.tanh,
    "asinh": math.asinh, "acosh": _guard(math.acosh, lambda v: math.nan),
    "atanh": _guard(math.atanh, lambda v: math.copysign(math.inf, v) if abs(v) == 1
                    else math.nan),
    "deg": lambda v: v * 180 / math.pi, "rad": lambda v: v * math.pi / 180, "sgn": sgn,
}


def go_max(a: float, b: float) -> float:
    """Go's ``math.Max``: NaN if either is NaN, +0 over -0."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == b == 0:
        return a if math.copysign(1, a) > 0 else b
    return max(a, b)


def go_min(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == b == 0:
        return a if math.copysign(1, a) < 0 else b
    return min(a, b)


def elementwise(f: Callable[[float], float], vector: list[Sample]) -> list[Sample]:
    return [Sample(drop_name(s.labels), f(s.value)) for s in vector]


def round_to(v: float, to: float) -> float:
    """``round(v, to)``: ``floor(v * (1/to) + 0.5) / (1/to)``, ties up, in Go's float rules."""
    inverse = _go_divide(1.0, to)
    return _go_divide(_go_floor(v * inverse + 0.5), inverse)


def sort(vector: list[Sample], descending: bool) -> list[Sample]:
    numbers = [s for s in vector if not math.isnan(s.value)]
    nans = [s for s in vector if math.isnan(s.value)]
    return sorted(numbers, key=lambda s: s.value, reverse=descending) + nans


def absent_labels(expr: nodes.Expr) -> Labels:
    """The labels ``absent`` gives: each ``=`` matcher's (not ``__name__``) of a selector
    argument, unless its label is matched more than once."""
    while isinstance(expr, nodes.ParenExpr):
        expr = expr.expr
    selector = expr.selector if isinstance(expr, nodes.MatrixSelector) else expr
    if not isinstance(selector, nodes.VectorSelector):
        return ()
    names = [m.name for m in selector.matchers]
    return tuple(sorted((m.name, m.value) for m in selector.matchers
                        if m.op == "=" and m.name != "__name__" and names.count(m.name) == 1))


def _date(field: Callable[[dt.datetime], int]) -> Callable[[float], float]:
    def apply(v: float) -> float:
        try:
            return float(field(dt.datetime.fromtimestamp(int(v), dt.UTC)))
        except (ValueError, OverflowError, OSError):
            return math.nan
    return apply


DATES: dict[str, Callable[[float], float]] = {
    "day_of_month": _date(lambda d: d.day),
    "day_of_week": _date(lambda d: (d.weekday() + 1) % 7),
    "day_of_year": _date(lambda d: d.timetuple().tm_yday),
    "days_in_month": _date(lambda d: calendar.monthrange(d.year, d.month)[1]),
    "hour": _date(lambda d: d.hour), "minute": _date(lambda d: d.minute),
    "month": _date(lambda d: d.month), "year": _date(lambda d: d.year),
}

__all__ = ["DATES", "MATH", "absent_labels", "elementwise", "go_max", "go_min",
           "round_to", "sgn", "sort"]
