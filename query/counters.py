"""``/api/v1/query`` for counters (rate, increase): one flat statement, labels looked up once.

The ``rate`` and ``increase`` helpers nest a dozen macros (binding and optimizing them costs
as much as running them over an hour of raw points) and label every row with a MAP (turning
2,048 MAPs into Python dicts costs more than computing the rates).  So the API asks one flat
statement over the stored increases (storage/sum_chain.py) and the roll-ups, with the
helpers' semantics (tests/query/test_counter_query.py holds the two equal), and attaches labels
itself: an ungrouped answer's series get theirs from a per-metric cache, rebuilt when the
metric's series count changes (series are only ever added), and a grouped answer comes back
as one row per group, its times and values as lists.  When a chain break touches the raw
part of the range, the helpers' own ``otel_increase_groups`` answers (``counter_sql``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from otel_hms.common.times import micros
from otel_hms.storage.point_macros import cumulative_increase, delta_increase, stored_increase

from .spec import QuerySpec

# Parameters: $1 metric, $2 period, $3 step, $4 until, $5 source, then group_by and match.
_HELPER = ("otel_increase_groups($1, $2::INTERVAL, step := $3::INTERVAL, "
           "until := $4::TIMESTAMPTZ, source := $5::VARCHAR{tail})")
_SERIES_SQL = "SELECT SeriesId, epoch_ms(TimeUnix), Value / {divisor} FROM {helper}"
_GROUPS_SQL = """
    SELECT map_keys(l.Labels), map_values(l.Labels), v.ts, v.vs
    FROM (SELECT GroupId, list(epoch_ms(TimeUnix) ORDER BY TimeUnix) AS ts,
                 list(Value / {divisor} ORDER BY TimeUnix) AS vs
          FROM {helper} GROUP BY GroupId) v
    JOIN otel_group_labels($1{groups}) l USING (GroupId)
"""
# The helpers' labels of an ungrouped series: service.name, overridden by point attributes.
LABELS_SQL = """
    SELECT series_id, coalesce(service_name, ''), coalesce(map_keys(attributes), []),
           coalesce(map_values(attributes), [])
    FROM series WHERE metric_name = ?
"""

# Whether the metric has at least half of the store's sum series.
MOST_SUMS_SQL = ("SELECT 2 * count(*) FILTER (WHERE metric_name = ?) >= count(*) FROM series "
                 "WHERE metric_type = 'sum'")

Labels = dict[str, str]


def counter_sql(spec: QuerySpec, source: str) -> tuple[str, list[Any]]:
    """SQL for a rate or increase: rows (series id, ms, value) or, grouped, (label keys,
    label values, [ms], [value]) per group.  The values are the helpers' (same sums, and a
    rate divides by the step's seconds as ``rate`` does)."""
    args: list[Any] = [spec.metric, spec.period, spec.step, spec.end, source]
    groups = ""
    if spec.by:
        args.append(list(spec.by))
        groups += f", group_by := ${len(args)}::VARCHAR[]"
    if spec.where:
        args += [list(spec.where), list(spec.where.values())]
        groups += f", match := MAP(${len(args) - 1}::VARCHAR[], ${len(args)}::VARCHAR[])"
    divisor = "epoch($3::INTERVAL)" if spec.agg == "rate" else "1"
    helper = _HELPER.format(tail=groups)
    if spec.by:
        return _GROUPS_SQL.format(divisor=divisor, helper=helper, groups=groups), args
    return _SERIES_SQL.format(divisor=divisor, helper=helper), args


def label_order(labels: dict[str, str | None]) -> tuple[tuple[str, bool, str], ...]:
    """Answers list their series in label order; a missing group value sorts last."""
    return tuple((k, v is None, v or "") for k, v in labels.items())


def _number(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def group_series(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Grouped rows to ``[{labels, points}]``, sorted by labels."""
    groups = [(dict(sorted(zip(keys, values))), [[t, _number(v)] for t, v in zip(times, vs)])
              for keys, values, times, vs in rows]
    groups.sort(key=lambda g: label_order(g[0]))
    return [{"labels": labels, "points": points} for labels, points in groups]


def ungrouped_series(rows: list[tuple[Any, ...]], labels: SeriesLabels) -> list[dict[str, Any]]:
    """Ungrouped rows (series id, ms, value) to ``[{labels, points}]``, sorted by labels."""
    isfinite = math.isfinite
    by_sid: dict[int, list[list[Any]]] = {}
    for sid, t, v in rows:  # values are DOUBLEs: NaN and infinities become null
        point = [t, v if v is None or isfinite(v) else None]
        points = by_sid.get(sid)
        if points is None:
            by_sid[sid] = [point]
        else:
            points.append(point)
    own = labels.labels
    out = []
    for sid in sorted(by_sid, key=labels.rank.__getitem__):
        points = by_sid[sid]
        if len(points) > 1:
            points.sort(key=lambda p: p[0])
        out.append({"labels": own[sid], "points": points})
    return out


class SeriesLabels(NamedTuple):
    """A metric's series: their labels (sorted dicts), their rank in label order, and
    whether they are most of the store's sum series (see ``_RAW_WHOLE``)."""

    labels: dict[int, Labels]
    rank: dict[int, int]
    most_sums: bool = False


class SeriesLabelCache:
    """Per metric, each series' labels as the API shows them (helper labels + extras).

    The dicts are shared by every answer that uses them: read them, never change them.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, SeriesLabels]] = {}

    def get(self, metric: str, count: int, wanted: set[int],
            build: Callable[[], SeriesLabels]) -> SeriesLabels:
        cached = self._cache.get(metric)
        if cached is None or cached[0] != count or not wanted.issubset(cached[1].labels):
            cached = self._cache[metric] = (count, build())
        return cached[1]

    def peek(self, metric: str) -> SeriesLabels | None:
        """The cached entry, whatever its version (for choices that are only about speed)."""
        cached = self._cache.get(metric)
        return cached[1] if cached else None


def build_labels(rows: list[tuple[Any, ...]], extra: dict[int, Labels],
                 most_sums: bool = False) -> SeriesLabels:
    """``LABELS_SQL`` rows and ``series_labels.extra_labels`` to sorted labels per series."""
    labels = {}
    for sid, service, keys, values in rows:
        own = {"service.name": service, **dict(zip(keys, values))}
        own.update(extra.get(sid, ()))
        labels[sid] = dict(sorted(own.items()))
    order = sorted(labels, key=lambda sid: label_order(labels[sid]))
    return SeriesLabels(labels, {sid: i for i, sid in enumerate(order)}, most_sums)


# The flat statement.  Raw points: the fast path of ``otel_sum_increments`` (the stored
# increase when the previous point lies in the range or its lookback, else the first-point
# rule), summed per series and bucket.  Named parameters: see ``counter_statement``.
_RAW = """
    SELECT p.series_id, (epoch_us(p.time) - $since_us) // $step_us AS b,
           sum(""" + stored_increase("{since}", "$lookback") + """) AS v
    FROM points_sum p JOIN series s USING (series_id)
    WHERE s.metric_name = $metric{match} AND p.time >= {since} AND p.time < $until
      AND p.flags & 1 = 0 AND NOT isnan(coalesce(p.value_int::DOUBLE, p.value))
    GROUP BY ALL
"""
# When the metric holds most of the store's sum series, summing every sum point of the range
# per series first and joining the sums (not the points) to the metric's series saves a
# hash lookup per point.
_RAW_WHOLE = """
    SELECT p.series_id, p.b,
           CASE WHEN s.aggregation_temporality = 1 THEN p.dlt ELSE p.cum END AS v
    FROM (SELECT series_id, (epoch_us(time) - $since_us) // $step_us AS b,
                 sum(""" + cumulative_increase("{since}", "$lookback", p="") + """) AS cum,
                 sum(""" + delta_increase("{since}", "$lookback", p="") + """) AS dlt
          FROM points_sum
          WHERE time >= {since} AND time < $until
            AND flags & 1 = 0 AND NOT isnan(coalesce(value_int::DOUBLE, value))
          GROUP BY ALL) p
    JOIN series s USING (series_id)
    WHERE s.metric_name = $metric{match}
"""
_ROLLED = """
    SELECT p.series_id, {bucket} AS b, p.increase AS v
    FROM rollup_{res}_number p
    WHERE p.increase IS NOT NULL AND p.time >= $since
      AND p.time < least($until, otel_rollup_until('{res}'))
"""
# One marker row comes first in every answer, computed in the answer's own snapshot: the
# chain breaks touching the raw part of the range (then the answer is void and the helpers
# answer) and the metric's series count (the version of its labels), or -1 when the metric
# is not (mostly) a sum, as ``QueryService.kind_of`` decides: then the answer is void too.
_MARKS = """
    (SELECT count(*) FROM sum_chain_breaks b JOIN series s USING (series_id)
     WHERE s.metric_name = $metric AND b.hi >= {since} - $lookback AND b.lo < $until),
    CASE WHEN (SELECT metric_type FROM series WHERE metric_name = $metric
               GROUP BY metric_type ORDER BY count(*) DESC LIMIT 1) = 'sum'
         THEN (SELECT count(*) FROM series WHERE metric_name = $metric) ELSE -1 END
"""
_SERIES = "SELECT s.series_id FROM series s WHERE s.metric_name = $metric{match}"
_GROUPS = """
    SELECT series_id, k, dense_rank() OVER (ORDER BY k) AS gid
    FROM (SELECT s.series_id, list_transform($by, lambda x: coalesce(s.attributes[x],
                 s.resource_attributes[x])) AS k
          FROM series s WHERE s.metric_name = $metric{match})
"""
_MS = "($since_us + u.b * $step_us) // 1000"
_BUCKET = "(epoch_us(p.time) - $since_us) // $step_us"
_FLAT_SERIES = """
    WITH g AS ({series}), u AS ({parts})
    SELECT NULL::UBIGINT, {marks}
    UNION ALL
    SELECT u.series_id, {ms} AS ms, sum(u.v) / $divisor
    FROM u JOIN g USING (series_id) GROUP BY u.series_id, u.b HAVING count(u.v) > 0
"""
# Raw points alone: the points' own join to their series already selects them.
_FLAT_RAW_SERIES = """
    SELECT NULL::UBIGINT, {marks}
    UNION ALL
    SELECT u.series_id, {ms} AS ms, u.v / $divisor FROM ({parts}) u WHERE u.v IS NOT NULL
"""
# Grouped, roll-up rows are summed per group and roll-up bucket first (``b`` is then the
# bucket's time in microseconds: no arithmetic per row), then per bucket of the answer.
_FLAT_GROUPS = """
    WITH g AS ({groups}), u AS ({parts}), per_b AS (
        SELECT g.gid, u.b, sum(u.v) AS v, count(u.v) AS n
        FROM u JOIN (SELECT series_id, gid FROM g) g USING (series_id) GROUP BY g.gid, u.b
    ), sums AS (
        SELECT u.gid, {ms} AS ms, sum(u.v) / $divisor AS v
        FROM (SELECT gid, {rebucket} AS b, v, n FROM per_b) u
        GROUP BY u.gid, u.b HAVING sum(u.n) > 0
    ), lists AS (
        SELECT gid, list(ms ORDER BY ms) AS ms, list(v ORDER BY ms) AS v FROM sums GROUP BY gid
    )
    SELECT NULL::VARCHAR[], NULL::VARCHAR[], [{marks}], NULL::DOUBLE[]
    UNION ALL
    SELECT $by, k.k, lists.ms, lists.v
    FROM lists JOIN (SELECT DISTINCT gid, k FROM g) k USING (gid)
"""
_MATCH = """ AND list_bool_and(list_transform($match_keys, lambda x: coalesce(s.attributes[x],
    s.resource_attributes[x]) = map($match_keys, $match_values)[x]))"""


def counter_statement(spec: QuerySpec, source: str, whole: bool = False
                      ) -> tuple[str, dict[str, Any]]:
    """The answer to ``spec`` from ``source`` and its parameters: a marker row (breaks,
    series count; see ``take_marker_row``), then rows shaped as ``counter_sql``'s.  With
    ``whole``, raw points are summed before being joined to their series (``_RAW_WHOLE``)."""
    match = _MATCH if spec.where else ""
    since = "$since" if source == "raw" else f"greatest(otel_rollup_until('{source}'), $since)"
    marks = _MARKS.format(since=since)
    parts = f"SELECT * FROM ({(_RAW_WHOLE if whole else _RAW).format(since=since, match=match)})"
    if spec.by:
        parts = f"SELECT series_id, $since_us + b * $step_us AS b, v FROM ({parts})"
    if source != "raw":
        parts += " UNION ALL " + _ROLLED.format(
            res=source, bucket="epoch_us(p.time)" if spec.by else _BUCKET)
    if spec.by:
        sql = _FLAT_GROUPS.format(groups=_GROUPS.format(match=match), parts=parts, ms=_MS,
                                  rebucket="(b - $since_us) // $step_us", marks=marks)
    elif source == "raw":
        sql = _FLAT_RAW_SERIES.format(parts=parts, ms=_MS, marks=marks)
    else:
        sql = _FLAT_SERIES.format(series=_SERIES.format(match=match), parts=parts, ms=_MS,
                                  marks=marks)
    params: dict[str, Any] = {
        "metric": spec.metric, "since": spec.start, "until": spec.end,
        "since_us": micros(spec.start), "step_us": micros(spec.step),
        "lookback": max(spec.step, dt.timedelta(minutes=5)),
        "divisor": spec.step.total_seconds() if spec.agg == "rate" else 1.0,
        "by": list(spec.by), "match_keys": list(spec.where),
        "match_values": list(spec.where.values())}
    return sql, used(sql, params)


def take_marker_row(rows: list[tuple[Any, ...]], grouped: bool
                ) -> tuple[int, int, list[tuple[Any, ...]]]:
    """(breaks, series count or -1, the answer's rows) from ``counter_statement``'s rows."""
    at = next(i for i, row in enumerate(rows) if row[0] is None)
    mark = rows.pop(at)
    breaks, count = mark[2] if grouped else (mark[1], mark[2])
    return int(breaks), int(count), rows


_NAME = re.compile(r"\$([a-z_]+)")


def used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``sql`` names (DuckDB refuses unused ones)."""
    return {name: params[name] for name in set(_NAME.findall(sql))}
