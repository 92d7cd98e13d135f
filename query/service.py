"""The query API's questions answered: metric lookup, one statement per answer, shaping.

Each question becomes one SQL statement over the store's helpers (see ``spec``), run on its
own cursor under the SQL time limit, so a slow query never holds up ingest or other
requests.  Counters (``counters``) and roll-up quantiles (``rollup_quantiles``) take shorter
roads with the helpers' exact answers.  The HTTP routes are ``otel_hms.query_routes``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_hms.storage.connection import Cursors
from otel_hms.storage.schema import POINT_TABLES

from . import counters
from .read_only import TooLarge, fetch_all
from .rollup_quantiles import RollupQuantiles
from .series_labels import LABELS_SQL, extra_labels
from .spec import (
    COUNTER_AGGS,
    QueryParamError,
    QuerySpec,
    choose_source,
    default_agg,
    parse_query,
    to_sql,
)

TEMPORALITY = {1: "delta", 2: "cumulative"}
HISTOGRAM_KINDS = ("histogram", "exponential_histogram")


class UnknownMetric(QueryParamError):
    pass


@dataclass(frozen=True)
class AnswerLimits:
    """The most series and points one answer holds; over either: 413 naming the setting."""
    max_series: int = 10_000
    max_points: int = 1_000_000

    def check(self, series: list[dict[str, Any]]) -> None:
        if len(series) > self.max_series:
            raise TooLarge(f"the answer has {len(series)} series, more than query_max_series "
                           f"({self.max_series}); narrow it with where=, group it with by=, "
                           "or raise the setting")
        if sum(len(s["points"]) for s in series) > self.max_points:
            raise self.too_many_points()

    def too_many_points(self) -> TooLarge:
        return TooLarge(f"the answer has more than query_max_points ({self.max_points}) "
                        "points; use a longer step=, a shorter range, fewer series (where=, "
                        "by=), or raise the setting")


class QueryService:
    """The query side of the API: metric lookup, query execution, result shaping."""

    def __init__(self, con: Cursors, timeout: float,
                 watermarks: Callable[[], dict[str, dt.datetime | None]] | None = None,
                 raw_retention: dt.timedelta | None = None,
                 limits: AnswerLimits | None = None) -> None:
        self.con = con
        self.limits = limits or AnswerLimits()
        self.timeout = timeout
        self.watermarks = watermarks or (lambda: {})
        self.raw_retention = raw_retention
        self.quantiles = RollupQuantiles(con, timeout)
        self._labels = counters.SeriesLabelCache()

    def kind_of(self, metric: str) -> tuple[str, bool | None]:
        _, rows = fetch_all(self.con, "SELECT metric_type, bool_or(is_monotonic) FROM series "
                            "WHERE metric_name = ? GROUP BY metric_type ORDER BY count(*) DESC",
                            [metric], self.timeout)
        if not rows:
            raise UnknownMetric(f"no metric named {metric!r} is stored; GET /api/v1/metrics "
                                "lists the names")
        return str(rows[0][0]), rows[0][1]

    def spec(self, params: Any, now: dt.datetime | None = None) -> tuple[QuerySpec, str]:
        now = now or dt.datetime.now(dt.UTC)
        metric = (params.get("metric") or "").strip()
        kind, monotonic = self.kind_of(metric) if metric else ("gauge", None)
        return parse_query(params, now, default_agg(kind, monotonic)), kind

    def answer(self, params: Any) -> dict[str, Any]:
        """``spec`` then ``run``; a rate or increase asked for by name skips the metric
        lookup (its statement checks the metric is a sum; if not, the usual road)."""
        agg = (params.get("agg") or "").strip().lower()
        if agg in COUNTER_AGGS and (params.get("metric") or "").strip():
            try:
                spec = parse_query(params, dt.datetime.now(dt.UTC), agg)
            except QueryParamError:
                pass  # reported by the usual road, after an unknown metric
            else:
                body = self._answer(spec, "sum", checked=False)
                if body is not None:
                    return body
        return self.run(*self.spec(params))

    def run(self, spec: QuerySpec, kind: str) -> dict[str, Any]:
        body = self._answer(spec, kind, checked=True)
        assert body is not None
        return body

    def _answer(self, spec: QuerySpec, kind: str, checked: bool) -> dict[str, Any] | None:
        """The answer; None when ``kind`` was not ``checked`` and the metric is no sum."""
        kept_since = (dt.datetime.now(dt.UTC) - self.raw_retention
                      if self.raw_retention is not None else None)
        source, spec = choose_source(spec, self.watermarks(), kept_since)
        if spec.agg in COUNTER_AGGS and kind == "sum":
            series = self._counter_series(spec, source, checked)
            if series is None:
                return None
        else:
            labels = None if spec.by else self.series_labels(spec.metric)
            # Quantiles from roll-ups have a faster path giving the SQL helper's exact answers.
            series = (self.quantiles.answer(spec, source, labels) if kind in HISTOGRAM_KINDS
                      else None)
            if series is None:
                sql, args = to_sql(spec, kind, source)
                series = shape(self._point_rows(sql, args), labels)
        self.limits.check(series)
        return {
            "metric": spec.metric, "kind": kind, "agg": spec.agg,
            "start_ms": epoch_ms(spec.start), "end_ms": epoch_ms(spec.end),
            "step_ms": int(spec.step.total_seconds() * 1000), "source": source,
            # The server's clock: a page moves its live window by it, not by its own clock,
            # which may be minutes off (points outside the window would vanish from charts).
            "now_ms": epoch_ms(dt.datetime.now(dt.UTC)),
            "series": series,
        }

    def _point_rows(self, sql: str, params: list[Any] | dict[str, Any]
                    ) -> list[tuple[Any, ...]]:
        """The rows of an answer (each one point or more, and one marker row at most), not
        fetching past what ``query_max_points`` allows."""
        rows = fetch_all(self.con, sql, params, self.timeout,
                         max_rows=self.limits.max_points + 1)[1]
        if len(rows) > self.limits.max_points + 1:
            raise self.limits.too_many_points()
        return rows

    def _counter_series(self, spec: QuerySpec, source: str,
                        checked: bool) -> list[dict[str, Any]] | None:
        """A rate or increase without a MAP per row (see ``counters``); None when the
        metric turns out not to be a sum and ``checked`` is false."""
        known = None if spec.by else self._labels.peek(spec.metric)
        whole = known is not None and known.most_sums
        sql, params = counters.counter_statement(spec, source, whole)
        rows = self._point_rows(sql, params)
        breaks, count, rows = counters.take_marker_row(rows, bool(spec.by))
        if count < 0 and not checked:
            return None
        if breaks:
            sql, args = counters.counter_sql(spec, source)
            rows = self._point_rows(sql, args)
        if spec.by:
            return counters.group_series(rows)
        labels = self._labels.get(spec.metric, count, {row[0] for row in rows},
                                  lambda: self._build_labels(spec.metric))
        return counters.ungrouped_series(rows, labels)

    def _build_labels(self, metric: str) -> counters.SeriesLabels:
        _, rows = fetch_all(self.con, counters.LABELS_SQL, [metric], self.timeout)
        _, most = fetch_all(self.con, counters.MOST_SUMS_SQL, [metric], self.timeout)
        return counters.build_labels(rows, self.series_labels(metric), bool(most[0][0]))

    def series_labels(self, metric: str) -> dict[int, dict[str, str]]:
        """Labels telling the metric's series apart (see ``series_labels``)."""
        _, rows = fetch_all(self.con, LABELS_SQL, [metric], self.timeout)
        return extra_labels(rows)

    def metrics(self) -> list[dict[str, Any]]:
        points = " UNION ALL ".join(
            f"SELECT series_id, min(time) AS lo, max(time) AS hi FROM {t} GROUP BY series_id"
            for t in POINT_TABLES.values())
        names, rows = fetch_all(self.con, f"""
            SELECT s.metric_name AS name, s.metric_type AS kind,
                   any_value(s.metric_unit) AS unit,
                   any_value(s.metric_description) AS description,
                   any_value(s.aggregation_temporality) AS temporality,
                   bool_or(s.is_monotonic) AS monotonic,
                   count(DISTINCT s.series_id) AS series,
                   min(p.lo) AS first_seen, max(p.hi) AS last_seen
            FROM series s LEFT JOIN ({points}) p USING (series_id)
            GROUP BY s.metric_name, s.metric_type ORDER BY s.metric_name, s.metric_type
        """, [], self.timeout)
        out = []
        for row in rows:
            item = dict(zip(names, row))
            item["temporality"] = TEMPORALITY.get(item["temporality"])
            for key in ("first_seen", "last_seen"):
                item[key] = item[key].isoformat() if item[key] else None
            out.append(item)
        return out


def epoch_ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def shape(rows: list[tuple[Any, ...]],
          labels: dict[int, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Rows of (label keys, label values, time in ms, Value, SeriesId) to
    ``[{labels, points}]``; ``labels`` adds to the labels of the series it names."""
    labels = labels or {}
    series: dict[tuple[Any, ...], dict[str, Any]] = {}
    for keys, values, t_ms, value, sid in rows:
        key = (tuple(keys), tuple(values), sid)
        entry = series.get(key)
        if entry is None:
            own = dict(zip(keys, values))
            own.update(labels.get(sid, ()))
            entry = series[key] = {"labels": dict(sorted(own.items())), "points": []}
        entry["points"].append([t_ms, _number(value)])
    out = list(series.values())
    for entry in out:
        entry["points"].sort(key=lambda p: p[0])
    out.sort(key=lambda e: counters.label_order(e["labels"]))  # built sorted
    return out
