"""``/api/v1/query`` parameters to one SQL statement over the store's helpers.

The API answers "metric over a range, aggregated per step, grouped by attributes" — what a
chart or a script wants — by calling the same SQL helpers a user can call (``rate``,
``histogram_quantile``, ``window_stats``), so the API and SQL never disagree.  Every value a
user sends is bound as a parameter, never spliced into the SQL text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

from otel_hms.common.durations import parse_seconds
from otel_hms.common.times import ceil_time

NUMBER_AGGS = {"avg": "Avg", "sum": "Sum", "min": "Min", "max": "Max", "count": "Count",
               "last": "Last"}
COUNTER_AGGS = ("rate", "increase")
QUANTILE_AGG = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
AGGS_HELP = "avg, sum, min, max, count, last, rate, increase, p50, p90, p95, p99 (any pNN)"
MAX_BUCKETS = 11_000


class QueryParamError(Exception):
    """A parameter is missing or malformed; the message names it and the fix (HTTP 400)."""


def parse_duration(text: str, name: str) -> dt.timedelta:
    """``90s``, ``5m``, ``1h30m``, ``30d``, ``2w``, ``250ms`` to a timedelta (the grammar of
    ``common.durations``)."""
    try:
        seconds = parse_seconds(text.strip())
    except ValueError:
        raise QueryParamError(f"{name}={text!r} is not a duration; use a number and a unit, "
                              "e.g. 30s, 5m, 24h, 30d") from None
    if seconds <= 0:
        raise QueryParamError(f"{name} must be greater than zero")
    return dt.timedelta(seconds=seconds)


def parse_time(text: str, name: str, now: dt.datetime) -> dt.datetime:
    """Unix seconds (or milliseconds when > 1e11), RFC 3339, or ``now`` / ``now-1h``."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - parse_duration(text[4:], name)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise QueryParamError(f"{name}={text!r} is not a time")
        return dt.datetime.fromtimestamp(number / 1000 if number > 1e11 else number, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryParamError(f"{name}={text!r} is not a time; use unix seconds, RFC 3339 "
                              "(2026-01-01T00:00:00Z) or now-1h") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def nice_step(span: dt.timedelta) -> dt.timedelta:
    """A round step giving at most ~300 points over ``span``."""
    for seconds in (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                    21600, 43200, 86400):
        if span.total_seconds() / seconds <= 300:
            return dt.timedelta(seconds=seconds)
    return dt.timedelta(days=math.ceil(span.total_seconds() / 300 / 86400))


@dataclass(frozen=True)
class QuerySpec:
    metric: str
    agg: str
    start: dt.datetime
    end: dt.datetime
    step: dt.timedelta
    by: tuple[str, ...] = ()
    where: dict[str, str] = field(default_factory=dict)

    @property
    def period(self) -> dt.timedelta:
        return self.end - self.start

    @property
    def quantile(self) -> float | None:
        m = QUANTILE_AGG.match(self.agg)
        return float(m.group(1)) / 100 if m else None


def parse_query(params: Any, now: dt.datetime, default_agg: str | None = None) -> QuerySpec:
    """Read ``metric, range, step, agg, by, where, start, end`` from query parameters.

    ``params`` is a multi-dict (``getlist``): ``where`` may repeat, or be comma-separated.
    """
    metric = (params.get("metric") or "").strip()
    if not metric:
        raise QueryParamError("metric is required, e.g. ?metric=http.server.request.duration; "
                              "GET /api/v1/metrics lists the names")
    end = parse_time(params["end"], "end", now) if params.get("end") else now
    if params.get("start"):
        start = parse_time(params["start"], "start", now)
    else:
        start = end - parse_duration(params.get("range") or "1h", "range")
    if start >= end:
        raise QueryParamError("start must be before end")
    step = (parse_duration(params["step"], "step") if params.get("step")
            else nice_step(end - start))
    if (end - start) / step > MAX_BUCKETS:
        raise QueryParamError(f"range/step gives more than {MAX_BUCKETS} points; use a larger "
                              "step")
    agg = (params.get("agg") or default_agg or "avg").strip().lower()
    if agg not in NUMBER_AGGS and agg not in COUNTER_AGGS and not QUANTILE_AGG.match(agg):
        raise QueryParamError(f"agg={agg!r} is not known; use one of {AGGS_HELP}")
    by = tuple(k.strip() for k in (params.get("by") or "").split(",") if k.strip())
    where: dict[str, str] = {}
    for item in params.getlist("where"):
        for clause in filter(None, (c.strip() for c in item.split(","))):
            key, eq, value = clause.partition("=")
            if not eq or not key.strip():
                raise QueryParamError(f"where={clause!r} must be attribute=value")
            where[key.strip()] = value.strip()
    return QuerySpec(metric=metric, agg=agg, start=start, end=end, step=step, by=by,
                     where=where)


def default_agg(kind: str, monotonic: bool | None) -> str:
    if kind == "sum" and monotonic:
        return "rate"
    if kind in ("histogram", "exponential_histogram"):
        return "p99"
    return "avg"


ROLLUPS = (("1h", dt.timedelta(hours=1), dt.timedelta(days=2)),
           ("1m", dt.timedelta(minutes=1), dt.timedelta(hours=6)))


def choose_source(spec: QuerySpec, watermarks: dict[str, dt.datetime | None],
                  raw_kept_since: dt.datetime | None) -> tuple[str, QuerySpec]:
    """Roll-ups for long ranges (and for ranges older than raw retention), else raw points.

    A roll-up serves when the step is a whole number of its buckets and it has rolled up
    part of the range; the range's end is then moved up to a bucket boundary so the grid
    lines up with the roll-up's buckets.  The part after its watermark comes from raw points.
    """
    for source, unit, long_range in ROLLUPS:
        mark = watermarks.get(source)
        if mark is None or spec.step % unit or mark <= spec.start:
            continue
        too_old = raw_kept_since is not None and spec.start < raw_kept_since
        if spec.period < long_range and not too_old:
            continue
        end = ceil_time(spec.end, unit)
        return source, QuerySpec(metric=spec.metric, agg=spec.agg, start=end - spec.period,
                                 end=end, step=spec.step, by=spec.by, where=spec.where)
    return "raw", spec


def to_sql(spec: QuerySpec, kind: str, source: str = "raw") -> tuple[str, list[Any]]:
    """The SQL (and its parameters) answering ``spec`` for a ``kind`` metric from ``source``.

    The result has columns label keys, label values, TimeUnix in epoch milliseconds, Value,
    SeriesId: lists and integers reach Python many times faster than MAPs and TIMESTAMPTZs.
    """
    sql, args = _helper_sql(spec, kind, source)
    return ("SELECT map_keys(Labels), map_values(Labels), epoch_ms(TimeUnix), Value, SeriesId "
            f"FROM ({sql})", args)


def _helper_sql(spec: QuerySpec, kind: str, source: str) -> tuple[str, list[Any]]:
    """The helper call answering ``spec``: columns Labels, TimeUnix, Value, SeriesId."""
    args: list[Any] = [spec.metric]
    head = ("?, ?::INTERVAL, step := ?::INTERVAL, until := ?::TIMESTAMPTZ, "
            "source := ?::VARCHAR")
    args += [spec.period, spec.step, spec.end, source]
    tail = ", group_by := ?::VARCHAR[]" if spec.by else ""
    args += [list(spec.by)] if spec.by else []
    if spec.where:
        tail += ", match := MAP(?::VARCHAR[], ?::VARCHAR[])"
        args += [list(spec.where), list(spec.where.values())]
    q = spec.quantile
    if q is not None:
        if kind not in ("histogram", "exponential_histogram"):
            raise QueryParamError(f"agg={spec.agg} needs a histogram; {spec.metric!r} is a "
                                  f"{kind}; use avg, sum, min, max, count, last, rate or increase")
        return (f"SELECT Labels, TimeUnix, Value, SeriesId "
                f"FROM histogram_quantile(?, {head}{tail})", [q, *args])
    if spec.agg in COUNTER_AGGS:
        if kind != "sum":
            raise QueryParamError(f"agg={spec.agg} needs a sum (counter); {spec.metric!r} is a "
                                  f"{kind}")
        return (f"SELECT Labels, TimeUnix, Value, SeriesId FROM {spec.agg}({head}{tail})",
                args)
    if kind not in ("gauge", "sum"):
        raise QueryParamError(f"agg={spec.agg} needs a gauge or sum; for the histogram "
                              f"{spec.metric!r} use p50, p90, p99 …")
    column = NUMBER_AGGS[spec.agg]
    return (f"SELECT Labels, TimeUnix, {column}::DOUBLE AS Value, SeriesId "
            f"FROM window_stats({head}{tail})", args)
