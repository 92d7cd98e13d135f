"""The PromQL evaluator, so far for the expressions that need no stored data.

Number and string literals, parentheses, unary minus, every binary operator between scalars
and between the vectors ``vector()`` makes, ``vector()``, ``time()`` and ``pi()`` — what
Grafana's connection test (``1+1``) and dashboards' constant lines ask — are evaluated with
Prometheus 2.42's arithmetic (Go's ``math.Mod`` and ``math.Pow``, IEEE division).  Anything
else raises ``NotSupportedYet`` naming it, which the API answers as an ``execution`` error:
never an empty result that would look like "no data".

Values at one step: a float (scalar), a str (string) or a list of ``Sample`` (vector).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import nodes
from .aggregate import aggregate
from .histograms import histogram_quantile
from .instant_functions import (
    DATES,
    MATH,
    absent_labels,
    elementwise,
    go_max,
    go_min,
    round_to,
    sort,
)
from .label_functions import label_join, label_replace
from .range_functions import RANGE_FUNCTIONS, BadArgument
from .selectors import Data, QueryTimes, check_deadline, instant, window
from .values import EvaluationError, Labels, Matrix, Sample, Value

DEFAULT_SUBQUERY_STEP_MS = 60_000  # Prometheus' default evaluation interval
INSTANT_FUNCTIONS = frozenset({
    "vector", "time", "pi", "histogram_quantile", "round", "clamp", "clamp_min", "clamp_max",
    "timestamp", "scalar", "sort", "sort_desc", "absent", "label_replace", "label_join",
    *MATH, *DATES})
AGGREGATIONS = ("sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk",
                "bottomk", "quantile", "count_values")
SUPPORTED = ("number and string literals, selectors of gauges and cumulative sums (with "
             "offset and @), arithmetic, comparisons and set operators, every aggregation, "
             "vector(), time(), pi(), histogram_quantile() over classic buckets, the math, "
             "date, clamp and sort functions, round, timestamp, scalar, absent, "
             "label_replace, label_join, "
             "absent_over_time, subqueries without @ and the functions of range vectors "
             "(rate, increase, "
             "delta, irate, idelta, the *_over_time ones, changes, "
             "resets, deriv, predict_linear, holt_winters)")


class NotSupportedYet(EvaluationError):
    """Valid PromQL the engine cannot evaluate yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported yet: {what}; otel-hms evaluates {SUPPORTED} so far")


def _divide(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _modulo(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)  # Go's math.Mod: the sign of the dividend, as C's fmod
    except ValueError:  # fmod(±Inf, y), fmod(x, 0): Go answers NaN
        return math.nan


def _odd_integer(b: float) -> bool:
    return math.isfinite(b) and b.is_integer() and int(b) % 2 == 1


def _power(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except ZeroDivisionError:  # 0 ** negative
        return math.copysign(math.inf, a) if _odd_integer(b) else math.inf
    except ValueError:  # negative ** fraction; Python raises for what Go answers as NaN
        if a == 0:
            return math.copysign(math.inf, a) if _odd_integer(b) else math.inf
        return math.nan
    except OverflowError:
        return -math.inf if a < 0 and _odd_integer(b) else math.inf


ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": _divide, "%": _modulo, "^": _power, "atan2": math.atan2,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}


def _drop_name(labels: Labels) -> Labels:
    return tuple((k, v) for k, v in labels if k != "__name__")


def _signature(labels: Labels, matching: nodes.VectorMatching) -> Labels:
    if matching.on:
        return tuple((k, v) for k, v in labels if k in matching.labels)
    return tuple((k, v) for k, v in labels if k not in matching.labels and k != "__name__")


def _scalar_binary(op: str, a: float, b: float) -> float:
    if op in COMPARISON:
        return 1.0 if COMPARISON[op](a, b) else 0.0
    return ARITHMETIC[op](a, b)


def _vector_scalar(op: str, vector: list[Sample], scalar: float, scalar_left: bool,
                   return_bool: bool) -> list[Sample]:
    out = []
    for sample in vector:
        a, b = (scalar, sample.value) if scalar_left else (sample.value, scalar)
        if op in COMPARISON:
            keep, value = COMPARISON[op](a, b), sample.value
        else:
            keep, value = True, ARITHMETIC[op](a, b)
        if return_bool:
            keep, value = True, 1.0 if keep else 0.0
        if keep:
            labels = sample.labels
            if op in ARITHMETIC or return_bool:
                labels = _drop_name(labels)
            out.append(Sample(labels, value))
    return out


def _set_operation(op: str, lhs: list[Sample], rhs: list[Sample],
                   matching: nodes.VectorMatching) -> list[Sample]:
    right = {_signature(s.labels, matching) for s in rhs}
    if op == "and":
        return [s for s in lhs if _signature(s.labels, matching) in right]
    if op == "unless":
        return [s for s in lhs if _signature(s.labels, matching) not in right]
    left = {_signature(s.labels, matching) for s in lhs}
    return lhs + [s for s in rhs if _signature(s.labels, matching) not in left]


def _vector_vector(expr: nodes.BinaryExpr, lhs: list[Sample], rhs: list[Sample]) -> list[Sample]:
    matching = expr.matching or nodes.VectorMatching("one-to-one")
    op = expr.op
    if op in ("and", "or", "unless"):
        return _set_operation(op, lhs, rhs, matching)
    if not lhs or not rhs:
        return []
    swap = matching.card == "one-to-many"
    many, one = (rhs, lhs) if swap else (lhs, rhs)
    ones: dict[Labels, Sample] = {}
    for sample in one:
        sig = _signature(sample.labels, matching)
        if sig in ones:
            side = "left" if swap else "right"
            raise EvaluationError(
                f"found duplicate series for the match group {_braces(sig)} on the {side} "
                "hand-side of the operation: [" + ", ".join(
                    _braces(s.labels) for s in (sample, ones[sig])) + "];many-to-many matching "
                "not allowed: matching labels must be unique on one side")
        ones[sig] = sample
    out: list[Sample] = []
    seen: dict[Labels, set[Labels]] = {}
    for sample in many:
        sig = _signature(sample.labels, matching)
        partner = ones.get(sig)
        if partner is None:
            continue
        a, b = (partner.value, sample.value) if swap else (sample.value, partner.value)
        if op in COMPARISON:
            keep, value = COMPARISON[op](a, b), a
        else:
            keep, value = True, ARITHMETIC[op](a, b)
        if expr.return_bool:
            keep, value = True, 1.0 if keep else 0.0
        if not keep:
            continue
        labels = _result_labels(sample.labels, partner.labels, op, expr.return_bool, matching)
        results = seen.setdefault(sig, set())
        if matching.card == "one-to-one" and results:
            raise EvaluationError("multiple matches for labels: many-to-one matching must be "
                                  "explicit (group_left/group_right)")
        if labels in results:
            raise EvaluationError("multiple matches for labels: grouping labels must ensure "
                                  "unique matches")
        results.add(labels)
        out.append(Sample(labels, value))
    return out


def _result_labels(labels: Labels, other: Labels, op: str, return_bool: bool,
                   matching: nodes.VectorMatching) -> Labels:
    result = dict(labels)
    if op in ARITHMETIC or return_bool:
        result.pop("__name__", None)
    if matching.card == "one-to-one":
        result = {k: v for k, v in result.items() if (k in matching.labels) == matching.on}
    from_other = dict(other)
    for name in matching.include:
        if from_other.get(name, ""):
            result[name] = from_other[name]
        else:
            result.pop(name, None)
    return tuple(sorted(result.items()))


def _braces(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


_DESCRIPTIONS = {
    nodes.VectorSelector: "vector selectors", nodes.MatrixSelector: "range vector selectors",
    nodes.SubqueryExpr: "subqueries", nodes.AggregateExpr: "aggregations",
}


def _describe(expr: nodes.Expr) -> str:
    if isinstance(expr, nodes.VectorSelector | nodes.MatrixSelector):
        selector = expr if isinstance(expr, nodes.VectorSelector) else expr.selector
        kind = _DESCRIPTIONS[type(expr)]
        return f"{kind} ({selector.name or 'by labels'})"
    if isinstance(expr, nodes.AggregateExpr):
        return f"aggregations ({expr.op})"
    if isinstance(expr, nodes.Call):
        return f"the function {expr.func}()"
    return _DESCRIPTIONS.get(type(expr), type(expr).__name__)


def check_supported(expr: nodes.Expr, top: bool = True) -> None:
    """Raise ``NotSupportedYet`` for the first node the evaluator cannot do yet (a range
    selector only at the top or as the argument of a range function)."""
    if isinstance(expr, nodes.NumberLiteral | nodes.StringLiteral | nodes.VectorSelector):
        return
    if isinstance(expr, nodes.MatrixSelector) and top:
        return
    if isinstance(expr, nodes.SubqueryExpr) and top:
        _check_range_argument(expr)
        return
    if isinstance(expr, nodes.ParenExpr | nodes.UnaryExpr):
        check_supported(expr.expr, top=False)
    elif isinstance(expr, nodes.BinaryExpr):
        check_supported(expr.lhs, top=False)
        check_supported(expr.rhs, top=False)
    elif isinstance(expr, nodes.Call) and expr.func == "absent_over_time":
        _check_range_argument(expr.args[0])
    elif isinstance(expr, nodes.Call) and expr.func in INSTANT_FUNCTIONS:
        for arg in expr.args:
            check_supported(arg, top=False)
    elif isinstance(expr, nodes.Call) and expr.func in RANGE_FUNCTIONS:
        for i, arg in enumerate(expr.args):
            if i == RANGE_FUNCTIONS[expr.func].matrix_arg:
                _check_range_argument(arg)
            else:
                check_supported(arg, top=False)
    elif isinstance(expr, nodes.AggregateExpr) and expr.op in AGGREGATIONS:
        check_supported(expr.expr, top=False)
        if expr.param is not None:
            check_supported(expr.param, top=False)
    else:
        raise NotSupportedYet(_describe(expr))


def _check_range_argument(expr: nodes.Expr) -> None:
    """A range selector, or a subquery (not pinned with ``@`` yet) of a supported one."""
    if isinstance(expr, nodes.MatrixSelector):
        return
    if isinstance(expr, nodes.SubqueryExpr) and expr.at is None:
        check_supported(expr.expr, top=False)
        return
    raise NotSupportedYet("subqueries with @" if isinstance(expr, nodes.SubqueryExpr)
                          else _describe(expr))


def range_points(expr: nodes.Expr, ts: int, data: Data
                 ) -> tuple[int, int, list[tuple[Labels, list[tuple[int, float]]]]]:
    """The reference time, the range and each series' points of a range selector or a
    subquery at step ``ts``.  A subquery evaluates its expression at every multiple of its
    step (default 1 m) in ``[ts - offset - range, ts - offset]``, both ends included."""
    if isinstance(expr, nodes.MatrixSelector):
        ref, series = window(expr.selector, expr.range_ms, ts, data)
        return ref, expr.range_ms, series
    assert isinstance(expr, nodes.SubqueryExpr)
    ref = ts - expr.offset_ms
    step = expr.step_ms or DEFAULT_SUBQUERY_STEP_MS
    first = -(-(ref - expr.range_ms) // step) * step
    found: dict[Labels, list[tuple[int, float]]] = {}
    for t in range(first, ref + 1, step):
        check_deadline(data)
        key = (expr, t)
        if key not in data.inner:
            data.inner[key] = evaluate(expr.expr, t, data)
        inner = data.inner[key]
        samples = [Sample((), inner)] if isinstance(inner, float) else inner
        assert isinstance(samples, list)
        for sample in samples:
            found.setdefault(sample.labels, []).append((t, sample.value))
    return ref, expr.range_ms, sorted(found.items())


def _unique(samples: list[Sample]) -> list[Sample]:
    if len({s.labels for s in samples}) != len(samples):
        raise EvaluationError("vector cannot contain metrics with the same labelset")
    return samples


def evaluate(expr: nodes.Expr, ts: int, data: Data | None = None) -> Value:
    """The value of ``expr`` at ``ts`` (milliseconds); ``data`` holds what its selectors
    read (``selectors.prepare``)."""
    data = data or Data(QueryTimes(ts, ts))
    if isinstance(expr, nodes.NumberLiteral):
        return expr.value
    if isinstance(expr, nodes.StringLiteral):
        return expr.value
    if isinstance(expr, nodes.VectorSelector):
        return [Sample(labels, value) for labels, value, _ in instant(expr, ts, data)]
    if isinstance(expr, nodes.MatrixSelector | nodes.SubqueryExpr):
        return Matrix(range_points(expr, ts, data)[2])
    if isinstance(expr, nodes.ParenExpr):
        return evaluate(expr.expr, ts, data)
    if isinstance(expr, nodes.UnaryExpr):
        inner = evaluate(expr.expr, ts, data)
        if isinstance(inner, float):
            return -inner
        assert isinstance(inner, list)
        return [Sample(_drop_name(s.labels), -s.value) for s in inner]
    if isinstance(expr, nodes.BinaryExpr):
        return _binary(expr, evaluate(expr.lhs, ts, data), evaluate(expr.rhs, ts, data))
    if isinstance(expr, nodes.AggregateExpr):
        inner = evaluate(expr.expr, ts, data)
        param = evaluate(expr.param, ts, data) if expr.param is not None else None
        assert isinstance(inner, list) and not isinstance(param, list | Matrix)
        return aggregate(expr.op, inner, expr.grouping, expr.without, param)
    if isinstance(expr, nodes.Call) and expr.func in RANGE_FUNCTIONS:
        return _range_function(expr, ts, data)
    if isinstance(expr, nodes.Call) and expr.func not in ("time", "pi", "vector"):
        return _instant_function(expr, ts, data)
    if isinstance(expr, nodes.Call):
        if expr.func == "time":
            return ts / 1000
        if expr.func == "pi":
            return math.pi
        if expr.func == "histogram_quantile":
            q, vector = evaluate(expr.args[0], ts, data), evaluate(expr.args[1], ts, data)
            assert isinstance(q, float) and isinstance(vector, list)
            return _unique(histogram_quantile(q, vector))
        if expr.func == "vector":
            value = evaluate(expr.args[0], ts, data)
            assert isinstance(value, float)
            return [Sample((), value)]
    raise NotSupportedYet(_describe(expr))


def _vector(expr: nodes.Expr, ts: int, data: Data) -> list[Sample]:
    value = evaluate(expr, ts, data)
    assert isinstance(value, list)
    return value


def _scalar(expr: nodes.Expr, ts: int, data: Data) -> float:
    value = evaluate(expr, ts, data)
    assert isinstance(value, float)
    return value


def _instant_function(expr: nodes.Call, ts: int, data: Data) -> Value:  # noqa: C901
    name, args = expr.func, expr.args
    if name == "histogram_quantile":
        return _unique(histogram_quantile(_scalar(args[0], ts, data), _vector(args[1], ts, data)))
    if name == "absent_over_time":
        found = range_points(args[0], ts, data)[2]
        return [] if found else [Sample(absent_labels(args[0]), 1.0)]
    if name in DATES:
        vector = _vector(args[0], ts, data) if args else [Sample((), ts / 1000)]
        return _unique(elementwise(DATES[name], vector))
    if name == "timestamp":
        inner = args[0]
        while isinstance(inner, nodes.ParenExpr):
            inner = inner.expr
        if isinstance(inner, nodes.VectorSelector):  # the samples' own times
            return _unique([Sample(_drop_name(labels), t / 1000)
                            for labels, _, t in instant(inner, ts, data)])
        return _unique(elementwise(lambda v: ts / 1000, _vector(inner, ts, data)))
    vector = _vector(args[0], ts, data)
    if name in ("label_replace", "label_join"):
        strings = [evaluate(arg, ts, data) for arg in args[1:]]
        assert all(isinstance(text, str) for text in strings)
        texts = [str(text) for text in strings]
        if name == "label_replace":
            return _unique(label_replace(vector, *texts))
        return _unique(label_join(vector, texts[0], texts[1], texts[2:]))
    if name in MATH:
        return _unique(elementwise(MATH[name], vector))
    if name == "round":
        to = _scalar(args[1], ts, data) if len(args) > 1 else 1.0
        return _unique(elementwise(lambda v: round_to(v, to), vector))
    if name == "clamp":
        lo, hi = _scalar(args[1], ts, data), _scalar(args[2], ts, data)
        if hi < lo:
            return []
        return _unique(elementwise(lambda v: go_max(lo, go_min(hi, v)), vector))
    if name == "clamp_min":
        lo = _scalar(args[1], ts, data)
        return _unique(elementwise(lambda v: go_max(lo, v), vector))
    if name == "clamp_max":
        hi = _scalar(args[1], ts, data)
        return _unique(elementwise(lambda v: go_min(hi, v), vector))
    if name == "scalar":
        return vector[0].value if len(vector) == 1 else math.nan
    if name in ("sort", "sort_desc"):
        return sort(vector, descending=name == "sort_desc")
    if name == "absent":
        return [] if vector else [Sample(absent_labels(args[0]), 1.0)]
    raise NotSupportedYet(_describe(expr))


def _range_function(expr: nodes.Call, ts: int, data: Data) -> list[Sample]:
    function = RANGE_FUNCTIONS[expr.func]
    matrix = expr.args[function.matrix_arg]
    scalars = []
    for i, arg in enumerate(expr.args):
        if i != function.matrix_arg:
            value = evaluate(arg, ts, data)
            assert isinstance(value, float)
            scalars.append(value)
    ref, range_ms, series = range_points(matrix, ts, data)
    out = []
    for labels, points in series:
        try:
            result = function.compute(points, ref, range_ms, ts, scalars)
        except BadArgument as exc:
            raise EvaluationError(str(exc)) from None
        if result is not None:
            out.append(Sample(labels if function.keeps_name else _drop_name(labels), result))
    return _unique(out)


def _binary(expr: nodes.BinaryExpr, lhs: Value, rhs: Value) -> Value:
    if isinstance(lhs, float) and isinstance(rhs, float):
        return _scalar_binary(expr.op, lhs, rhs)
    if isinstance(lhs, list) and isinstance(rhs, float):
        return _vector_scalar(expr.op, lhs, rhs, False, expr.return_bool)
    if isinstance(lhs, float) and isinstance(rhs, list):
        return _vector_scalar(expr.op, rhs, lhs, True, expr.return_bool)
    assert isinstance(lhs, list) and isinstance(rhs, list)
    return _vector_vector(expr, lhs, rhs)


__all__ = ["EvaluationError", "Matrix", "NotSupportedYet", "Sample", "Value",
           "check_supported", "evaluate"]
