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

from . import nodes
from .aggregate import aggregate
from .binary import binary, drop_name
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
from .selectors import Data, QueryTimes, at_time, check_deadline, instant, window
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
             "absent_over_time, subqueries and the functions of range vectors "
             "(rate, increase, "
             "delta, irate, idelta, the *_over_time ones, changes, "
             "resets, deriv, predict_linear, holt_winters)")


class NotSupportedYet(EvaluationError):
    """Valid PromQL the engine cannot evaluate yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported yet: {what}; otel-hms evaluates {SUPPORTED} so far")


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
    """A range selector, or a subquery of a supported expression."""
    if isinstance(expr, nodes.MatrixSelector):
        return
    if isinstance(expr, nodes.SubqueryExpr):
        check_supported(expr.expr, top=False)
        return
    raise NotSupportedYet(_describe(expr))


def range_points(expr: nodes.Expr, ts: int, data: Data
                 ) -> tuple[int, int, list[tuple[Labels, list[tuple[int, float]]]]]:
    """The reference time, the range and each series' points of a range selector or a
    subquery at step ``ts``.  A subquery evaluates its expression at every multiple of its
    step (default 1 m) in ``[ref - range, ref]``, both ends included, ``ref`` being ``ts`` (or
    the time its ``@`` pins) minus its offset."""
    if isinstance(expr, nodes.MatrixSelector):
        ref, series = window(expr.selector, expr.range_ms, ts, data)
        return ref, expr.range_ms, series
    assert isinstance(expr, nodes.SubqueryExpr)
    ref = (ts if expr.at is None else at_time(expr.at, data.times)) - expr.offset_ms
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
        return [Sample(drop_name(s.labels), -s.value) for s in inner]
    if isinstance(expr, nodes.BinaryExpr):
        return binary(expr, evaluate(expr.lhs, ts, data), evaluate(expr.rhs, ts, data))
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
            return _unique([Sample(drop_name(labels), t / 1000)
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
            out.append(Sample(labels if function.keeps_name else drop_name(labels), result))
    return _unique(out)


__all__ = ["EvaluationError", "Matrix", "NotSupportedYet", "Sample", "Value",
           "check_supported", "evaluate"]
