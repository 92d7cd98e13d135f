"""The Prometheus HTTP API's answers, as pure functions of the request's form values.

Each endpoint takes the form Go's ``Request.FormValue`` would see (a body value wins over the
URL's) and returns the status and JSON bytes Prometheus 2.42 answers: parameters checked in
its order with its words, ``{"status":"error","errorType":…,"error":…}`` on failure, values
and times formatted by ``format``.  ``otel_hms.http.prometheus`` serves them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from otel_hms.query.deadline import QueryCancelled, QueryError, QueryTimedOut

from . import format as fmt
from . import nodes
from .evaluate import EvaluationError, Matrix, Sample, Value, check_supported, evaluate
from .params import MAX_TIME_MS, MIN_TIME_MS, ParamError, parse_duration, parse_time
from .parse import ParseError, parse, parse_selector
from .selectors import Data, DeltaNotSupported, QueryTimeout, QueryTimes, check_deadline, prepare
from .store import SPLIT_LABEL, NotServedYet, PromSeries, PromStore, TooManySamples

STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 503,
          "internal": 500, "unavailable": 503, "not_found": 404}
MAX_POINTS = 11_000
_TYPE_WORDS = {"matrix": "range vector", "vector": "instant vector", "scalar": "scalar",
               "string": "string"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class ApiError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _invalid(param: str, message: str) -> ApiError:
    return ApiError("bad_data", f'invalid parameter "{param}": {message}')


def success(data: str) -> Answer:
    return Answer(200, ('{"status":"success","data":' + data + "}").encode())


def failure(error: ApiError) -> Answer:
    return Answer(STATUS[error.error_type],
                  ('{"status":"error","errorType":' + fmt.json_string(error.error_type)
                   + ',"error":' + fmt.json_string(error.message) + "}").encode())


def _answer(compute: Callable[[], str]) -> Answer:
    try:
        return success(compute())
    except ApiError as error:
        return failure(error)
    except QueryTimedOut:  # the store's SQL ran past the time limit
        return failure(ApiError("timeout", TIMED_OUT))
    except QueryCancelled as exc:
        return failure(ApiError("canceled", str(exc)))
    except QueryError as exc:
        return failure(ApiError("internal", str(exc)))


def _parse_query(form: Mapping[str, str], prefixed: bool = True) -> nodes.Expr:
    """The query's tree; 2.42 prefixes ``invalid parameter "query": `` to parse errors of
    instant queries only."""
    try:
        return parse(form.get("query", ""))
    except ParseError as exc:
        raise (_invalid("query", str(exc)) if prefixed else ApiError("bad_data", str(exc))
               ) from None


DEFAULT_TIMEOUT_S = 120.0  # Prometheus' --query.timeout, where no store sets one


def _timeout(form: Mapping[str, str], store: PromStore | None) -> float:
    """The query's deadline (``time.monotonic()``): its ``timeout`` parameter, capped by the
    API's time limit (``sql_timeout_seconds``)."""
    limit = store.timeout if store is not None else DEFAULT_TIMEOUT_S
    if form.get("timeout", ""):
        try:
            limit = min(limit, parse_duration(form["timeout"]) / 1e9)
        except ParamError as exc:
            raise _invalid("timeout", str(exc)) from None
    return time.monotonic() + limit


TIMED_OUT = "query timed out in expression evaluation"


def _check(data: Data) -> None:
    try:
        check_deadline(data)
    except QueryTimeout:
        raise ApiError("timeout", TIMED_OUT) from None


def _evaluate(expr: nodes.Expr, ts: int, data: Data) -> Value:
    try:
        return evaluate(expr, ts, data)
    except EvaluationError as exc:
        raise ApiError("execution", str(exc)) from None
    except QueryTimeout:
        raise ApiError("timeout", TIMED_OUT) from None


def _prepare(expr: nodes.Expr, store: PromStore | None, start: int, end: int,
             deadline: float) -> Data:
    try:
        return prepare(expr, store, QueryTimes(start, end), deadline)
    except TooManySamples:
        raise ApiError("execution", "query processing would load too many samples into "
                       "memory in query execution") from None
    except DeltaNotSupported as exc:
        raise ApiError("execution", f"not supported yet: delta temporality ({exc}); "
                       "cumulative series and gauges are") from None
    except NotServedYet as exc:
        raise ApiError("execution", f"not supported yet: {exc}; gauges and sums are") from None


def instant_query(form: Mapping[str, str], now_ms: int, store: PromStore | None = None
                  ) -> Answer:
    """``/api/v1/query``: ``query``, ``time`` (default now), ``timeout``."""
    def compute() -> str:
        ts = now_ms
        if form.get("time", ""):
            try:
                ts = parse_time(form["time"])
            except ParamError as exc:
                raise _invalid("time", f"Invalid time value for 'time': {exc}") from None
        deadline = _timeout(form, store)
        expr = _parse_query(form)
        _supported(expr)
        value = _evaluate(expr, ts, _prepare(expr, store, ts, ts, deadline))
        return _instant_json(value, ts)
    return _answer(compute)


def _supported(expr: nodes.Expr) -> None:
    try:
        check_supported(expr)
    except EvaluationError as exc:
        raise ApiError("execution", str(exc)) from None


def _instant_json(value: Value, ts: int) -> str:
    if isinstance(value, float):
        result = f"[{fmt.json_float(ts / 1000)},{fmt.json_string(fmt.fixed(value))}]"
        return '{"resultType":"scalar","result":' + result + "}"
    if isinstance(value, str):
        result = f"[{fmt.json_float(ts / 1000)},{fmt.json_string(value)}]"
        return '{"resultType":"string","result":' + result + "}"
    if isinstance(value, Matrix):
        return '{"resultType":"matrix","result":[' + ",".join(
            _series_json(labels, points) for labels, points in value.series) + "]}"
    samples = ",".join(
        '{"metric":' + fmt.json_labels(s.labels) + ',"value":[' + fmt.sample_time(ts) + ","
        + fmt.json_string(fmt.sample_value(s.value)) + "]}" for s in value)
    return '{"resultType":"vector","result":[' + samples + "]}"


def _series_json(labels: tuple[tuple[str, str], ...], points: list[tuple[int, float]]) -> str:
    values = ",".join(f"[{fmt.sample_time(ts)},{fmt.json_string(fmt.sample_value(v))}]"
                      for ts, v in points)
    return '{"metric":' + fmt.json_labels(labels) + ',"values":[' + values + "]}"


def range_query(form: Mapping[str, str], store: PromStore | None = None) -> Answer:
    """``/api/v1/query_range``: ``query``, ``start``, ``end``, ``step``, ``timeout``."""
    def compute() -> str:
        start, end = _required_time(form, "start"), _required_time(form, "end")
        if end < start:
            raise _invalid("end", "end timestamp must not be before start time")
        try:
            step_ns = parse_duration(form.get("step", ""))
        except ParamError as exc:
            raise _invalid("step", str(exc)) from None
        if step_ns <= 0:
            raise _invalid("step", "zero or negative query resolution step widths are not "
                           "accepted. Try a positive integer")
        if min((end - start) * 1_000_000, 2**63 - 1) // step_ns > MAX_POINTS:
            raise ApiError("bad_data", "exceeded maximum resolution of 11,000 points per "
                           "timeseries. Try decreasing the query resolution (?step=XX)")
        deadline = _timeout(form, store)
        expr = _parse_query(form, prefixed=False)
        if expr.type not in ("scalar", "vector"):
            raise ApiError("bad_data", f'invalid expression type "{_TYPE_WORDS[expr.type]}" '
                           "for range query, must be Scalar or instant Vector")
        _supported(expr)
        step_ms = max(1, step_ns // 1_000_000)
        steps = range(start, end + 1, step_ms)
        data = _prepare(expr, store, start, end, deadline)
        values = []
        for ts in steps:
            _check(data)
            values.append((ts, _evaluate(expr, ts, data)))
        return _matrix_json(values)
    return _answer(compute)


def _required_time(form: Mapping[str, str], name: str) -> int:
    try:
        return parse_time(form.get(name, ""))
    except ParamError as exc:
        raise _invalid(name, str(exc)) from None


def _matrix_json(values: list[tuple[int, Value]]) -> str:
    series: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for ts, value in values:
        samples = [Sample((), value)] if isinstance(value, float) else value
        assert isinstance(samples, list)
        for sample in samples:
            series.setdefault(sample.labels, []).append((ts, sample.value))
    parts = [_series_json(labels, series[labels]) for labels in sorted(series)]
    return '{"resultType":"matrix","result":[' + ",".join(parts) + "]}"


# ---- series, labels, label values ----------------------------------------------------

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
NON_EMPTY = "match[] must contain at least one non-empty matcher"


def _time_or(form: Mapping[str, str], name: str, default: int) -> int:
    if not form.get(name, ""):
        return default
    try:
        return parse_time(form[name])
    except ParamError as exc:
        raise _invalid(name, f"Invalid time value for '{name}': {exc}") from None


def _selectors(matches: Sequence[str], store: PromStore,
               param_prefix: bool) -> list[tuple[nodes.Matcher, ...]]:
    sets = []
    for text in matches:
        try:
            selector = parse_selector(text)
        except ParseError as exc:
            raise (_invalid("match[]", str(exc)) if param_prefix
                   else ApiError("bad_data", str(exc))) from None
        if all(store.matches_empty(m) for m in selector.matchers):
            raise (_invalid("match[]", NON_EMPTY) if param_prefix
                   else ApiError("bad_data", NON_EMPTY))
        sets.append(selector.matchers)
    return sets


def _label_sets(store: PromStore, sets: list[tuple[nodes.Matcher, ...]], start: int,
                end: int) -> set[tuple[tuple[str, str], ...]]:
    """The label sets of the series that any of ``sets`` selects (all without ``sets``)
    with points in ``[start, end]``; a histogram's buckets once per ``le`` its points give,
    a summary's quantiles once per ``quantile``."""
    chosen: dict[tuple[int, str], tuple[PromSeries, list[tuple[nodes.Matcher, ...]]]] = {}
    for matchers in sets or [()]:
        for s in store.select(matchers) if sets else store.all_series():
            chosen.setdefault((s.series_id, s.part), (s, []))[1].append(matchers)
    series = [s for s, _ in chosen.values()]
    if (start, end) != (MIN_TIME_MS, MAX_TIME_MS):
        series = store.in_range(series, start, end)
    values = store.split_values([s for s in series if s.part in SPLIT_LABEL], start, end)
    found = set()
    for s in series:
        split = SPLIT_LABEL.get(s.part)
        if split is None:
            found.add(s.labels)
            continue
        for value in values.get(s.series_id, ()):
            if any(store.split_matches(m, split, value)
                   for m in chosen[(s.series_id, s.part)][1]):
                found.add(tuple(sorted((*s.labels, (split, value)))))
    return found


def _limit(form: Mapping[str, str]) -> int | None:
    """Newer Prometheus' ``limit`` (Grafana sends 40000): applied when a positive integer,
    ignored otherwise, as 2.42 ignores the parameter."""
    text = form.get("limit", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def _string_list(values: list[str], limit: int | None) -> str:
    return "[" + ",".join(fmt.json_string(v) for v in values[:limit]) + "]"


def series(form: Mapping[str, str], matches: Sequence[str], store: PromStore) -> Answer:
    """``/api/v1/series``: ``match[]`` (required, repeated), ``start``, ``end``."""
    def compute() -> str:
        if not matches:
            raise ApiError("bad_data", "no match[] parameter provided")
        start = _time_or(form, "start", MIN_TIME_MS)
        end = _time_or(form, "end", MAX_TIME_MS)
        sets = _selectors(matches, store, param_prefix=True)
        found = sorted(_label_sets(store, sets, start, end))
        return "[" + ",".join(fmt.json_labels(labels) for labels in found[:_limit(form)]) + "]"
    return _answer(compute)


def labels(form: Mapping[str, str], matches: Sequence[str], store: PromStore) -> Answer:
    """``/api/v1/labels``: every label name (of the series ``match[]`` selects)."""
    def compute() -> str:
        start = _time_or(form, "start", MIN_TIME_MS)
        end = _time_or(form, "end", MAX_TIME_MS)
        sets = _selectors(matches, store, param_prefix=False)
        names = {name for labels in _label_sets(store, sets, start, end) for name, _ in labels}
        return _string_list(sorted(names), _limit(form))
    return _answer(compute)


def label_values(name: str, form: Mapping[str, str], matches: Sequence[str],
                 store: PromStore) -> Answer:
    """``/api/v1/label/<name>/values``: the label's values (of the series ``match[]``
    selects)."""
    def compute() -> str:
        if not _LABEL_NAME.fullmatch(name):
            raise ApiError("bad_data", f"invalid label name: {fmt.json_string(name)}")
        start = _time_or(form, "start", MIN_TIME_MS)
        end = _time_or(form, "end", MAX_TIME_MS)
        sets = _selectors(matches, store, param_prefix=False)
        values = {v for labels in _label_sets(store, sets, start, end) for k, v in labels
                  if k == name}
        return _string_list(sorted(values), _limit(form))
    return _answer(compute)


def _selectors_of(expr: nodes.Expr) -> list[nodes.VectorSelector]:
    if isinstance(expr, nodes.VectorSelector):
        return [expr]
    if isinstance(expr, nodes.MatrixSelector):
        return [expr.selector]
    children: list[nodes.Expr] = []
    if isinstance(expr, nodes.ParenExpr | nodes.UnaryExpr | nodes.SubqueryExpr):
        children = [expr.expr]
    elif isinstance(expr, nodes.BinaryExpr):
        children = [expr.lhs, expr.rhs]
    elif isinstance(expr, nodes.Call):
        children = list(expr.args)
    elif isinstance(expr, nodes.AggregateExpr):
        children = [expr.expr] + ([expr.param] if expr.param is not None else [])
    return [found for child in children for found in _selectors_of(child)]


def query_exemplars(form: Mapping[str, str], store: PromStore) -> Answer:
    """``/api/v1/query_exemplars``: ``query``, ``start``, ``end``; the exemplars of the
    series every selector of the query matches, whatever functions surround them (204 with
    no body when the query has no selector, as 2.42)."""
    def compute() -> str | None:
        start = _time_or(form, "start", MIN_TIME_MS)
        end = _time_or(form, "end", MAX_TIME_MS)
        if end < start:
            raise ApiError("bad_data", "end timestamp must not be before start timestamp")
        expr = _parse_query(form, prefixed=False)
        selectors = _selectors_of(expr)
        if not selectors:
            return None
        found: dict[int, PromSeries] = {}
        for selector in selectors:
            try:
                store.check_served(selector.matchers)
            except NotServedYet as exc:
                raise ApiError("execution", f"not supported yet: exemplars of {exc}") from None
            for s in store.select(selector.matchers):
                if s.part:
                    raise ApiError("execution", f"not supported yet: exemplars of {s.kind}s ("
                                   + dict(s.labels)["__name__"] + ")")
                found[s.series_id] = s
        exemplars = store.exemplars(list(found.values()), start, end)
        parts = []
        for s in sorted(found.values(), key=lambda s: s.labels):
            if s.series_id not in exemplars:
                continue
            items = ",".join(
                '{"labels":' + fmt.json_labels(tuple(sorted(labels.items())))
                + ',"value":' + fmt.json_string(fmt.sample_value(value))
                + ',"timestamp":' + fmt.sample_time(t) + "}"
                for t, value, labels in exemplars[s.series_id])
            parts.append('{"seriesLabels":' + fmt.json_labels(s.labels) + ',"exemplars":['
                         + items + "]}")
        return "[" + ",".join(parts) + "]"
    try:
        data = compute()
    except ApiError as error:
        return failure(error)
    except QueryTimedOut:
        return failure(ApiError("timeout", TIMED_OUT))
    except QueryError as exc:
        return failure(ApiError("internal", str(exc)))
    return Answer(204, b"") if data is None else success(data)


def metadata(form: Mapping[str, str], store: PromStore) -> Answer:
    """``/api/v1/metadata``: ``metric`` (one family), ``limit`` (families); each family's
    distinct type, help and unit, from the series table (2.42 answers only for its active
    scrape targets; here every stored metric has them)."""
    def compute() -> str:
        limit = -1
        if form.get("limit", ""):
            if not re.fullmatch(r"[+-]?\d+", form["limit"]):
                raise ApiError("bad_data", "limit must be a number")
            limit = int(form["limit"])
        families = store.metadata()
        names = sorted(families) if not form.get("metric") else [
            name for name in (form["metric"],) if name in families]
        if limit >= 0:
            names = names[:limit]
        return "{" + ",".join(
            fmt.json_string(name) + ":[" + ",".join(
                '{"type":' + fmt.json_string(kind) + ',"help":' + fmt.json_string(help_)
                + ',"unit":' + fmt.json_string(unit) + "}"
                for kind, help_, unit in sorted(families[name])) + "]"
            for name in names) + "}"
    return _answer(compute)


def buildinfo(revision: str) -> Answer:
    """``/api/v1/status/buildinfo``: version 2.42.0 (the dialect we speak) and no
    ``features`` key, from which Grafana concludes "Prometheus" (with one it assumes Mimir)."""
    fields = {"version": "2.42.0", "revision": revision, "branch": "", "buildUser": "",
              "buildDate": "", "goVersion": ""}
    return success("{" + ",".join(f"{fmt.json_string(k)}:{fmt.json_string(v)}"
                                  for k, v in fields.items()) + "}")


__all__ = ["Answer", "ApiError", "MAX_POINTS", "buildinfo", "failure", "instant_query",
           "label_values", "labels", "metadata", "query_exemplars", "range_query", "series",
           "success"]
