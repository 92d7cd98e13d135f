"""``/api/v1/query`` for counters (rate, increase): values by series id, labels looked up once.

The ``rate`` and ``increase`` helpers label every row with a MAP, and turning 2,048 MAPs
into Python dicts costs more than computing the rates.  So the API asks the helpers' own
``otel_increase_groups`` (the same sums, hence the same values) and attaches labels itself:
an ungrouped answer's series get theirs from a per-metric cache, rebuilt when the metric's
series count changes (series are only ever added), and a grouped answer comes back as one
row per group, its times and values as lists and its labels converted once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from .query_spec import QuerySpec

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
COUNT_SQL = "SELECT count(*) FROM series WHERE metric_name = ?"

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


def series_series(rows: list[tuple[Any, ...]], labels: SeriesLabels) -> list[dict[str, Any]]:
    """Ungrouped rows (series id, ms, value) to ``[{labels, points}]``, sorted by labels."""
    by_sid: dict[int, list[list[Any]]] = {}
    for sid, t, v in rows:
        points = by_sid.get(sid)
        if points is None:
            points = by_sid[sid] = []
        points.append([t, _number(v)])
    rank = labels.rank
    out = []
    for sid in sorted(by_sid, key=rank.__getitem__):
        points = by_sid[sid]
        if len(points) > 1:
            points.sort(key=lambda p: p[0])
        out.append({"labels": labels.labels[sid], "points": points})
    return out


class SeriesLabels(NamedTuple):
    """A metric's series: their labels (sorted dicts) and their rank in label order."""

    labels: dict[int, Labels]
    rank: dict[int, int]


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


def build_labels(rows: list[tuple[Any, ...]], extra: dict[int, Labels]) -> SeriesLabels:
    """``LABELS_SQL`` rows and ``series_labels.extra_labels`` to sorted labels per series."""
    labels = {}
    for sid, service, keys, values in rows:
        own = {"service.name": service, **dict(zip(keys, values))}
        own.update(extra.get(sid, ()))
        labels[sid] = dict(sorted(own.items()))
    order = sorted(labels, key=lambda sid: label_order(labels[sid]))
    return SeriesLabels(labels, {sid: i for i, sid in enumerate(order)})
