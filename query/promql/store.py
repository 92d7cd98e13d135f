"""The store as Prometheus sees it: series under Prometheus labels, and their samples.

This is the simple road of docs/design/prometheus.md §10.3: the ``series`` table is read once
per change (rows are only ever added, so its row count tells), every row gets its
Prometheus labels (``labels``), and matchers run in Python over them — regexes through
DuckDB's RE2, Go's syntax.  The postings index of the design replaces the matching later;
what it answers must stay the same.

So far gauges and sums (cumulative; delta sums are listed but not evaluated yet) are
Prometheus series; histograms, exponential histograms and summaries are not listed yet, and
a selector that matches one of their families (``x_bucket``, ``x_sum``, ``x_count``, a
summary's ``x``, a native histogram's ``x``) is refused with ``NotServedYet`` rather than
answered without them.
Samples: ``(t_ms, value)`` sorted by time, duplicates (a retried export) once, a point
flagged no-recorded-value as a stale marker (NaN with ``stale`` set).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

from otel_hms.query.read_only import fetch_all
from otel_hms.storage.connection import Cursors

from . import nodes
from .labels import metric_name, series_labels

Labels = tuple[tuple[str, str], ...]
NUMBER_KINDS = ("gauge", "sum")
_FAMILY_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
                    "exponential_histogram": ("",)}


class NotServedYet(Exception):
    """A selector matched series of a kind not served as Prometheus series yet."""


@dataclass(frozen=True)
class PromSeries:
    series_id: int
    kind: str  # gauge | sum
    delta: bool
    labels: Labels  # sorted, __name__ included


@dataclass
class Samples:
    times: list[int]
    values: list[float]
    stale: list[bool]


class PromStore:
    """Prometheus series and samples over the store's read-only cursors."""

    def __init__(self, con: Cursors, timeout: float) -> None:
        self.con = con
        self.timeout = timeout
        self._lock = threading.Lock()
        self._rows = -1
        self._series: list[PromSeries] = []
        self._unserved: list[PromSeries] = []
        self._regex = duckdb.connect()

    def all_series(self) -> list[PromSeries]:
        _, counted = fetch_all(self.con, "SELECT count(*) FROM series", [], self.timeout)
        with self._lock:
            if counted[0][0] != self._rows:
                self._load()
                self._rows = int(counted[0][0])
            return self._series

    def _load(self) -> None:
        _, rows = fetch_all(self.con, """
            SELECT series_id, metric_type, metric_name, metric_unit, is_monotonic,
                   aggregation_temporality, map_entries(attributes) AS attributes,
                   map_entries(resource_attributes) AS resource
            FROM series ORDER BY series_id""", [], self.timeout)
        self._series, self._unserved = [], []
        for sid, kind, name, unit, monotonic, temporality, attrs, resource in rows:
            prom = metric_name(name, unit, kind, monotonic)
            if kind in NUMBER_KINDS:
                labels = series_labels(prom, _entries(attrs), _entries(resource))
                self._series.append(PromSeries(int(sid), kind, temporality == 1 and kind == "sum",
                                               tuple(sorted(labels.items()))))
                continue
            for suffix in _FAMILY_SUFFIXES.get(kind, ("",)):
                labels = series_labels(prom + suffix, _entries(attrs), _entries(resource))
                self._unserved.append(PromSeries(int(sid), kind, False,
                                                 tuple(sorted(labels.items()))))

    def select(self, matchers: tuple[nodes.Matcher, ...]) -> list[PromSeries]:
        """The series every matcher matches (a missing label compares as "")."""
        return self._filter(self.all_series(), matchers)

    def check_served(self, matchers: tuple[nodes.Matcher, ...]) -> None:
        """Raise ``NotServedYet`` naming the families of kinds not served yet that
        ``matchers`` select."""
        self.all_series()
        hit = self._filter(self._unserved, matchers)
        if hit:
            names = sorted({f"{dict(s.labels)['__name__']} ({s.kind.replace('_', ' ')})"
                            for s in hit})
            raise NotServedYet(", ".join(names))

    def _filter(self, found: list[PromSeries], matchers: tuple[nodes.Matcher, ...]
                ) -> list[PromSeries]:
        for matcher in matchers:
            wanted = self._matching_values(matcher, {dict(s.labels).get(matcher.name, "")
                                                     for s in found})
            found = [s for s in found if dict(s.labels).get(matcher.name, "") in wanted]
        return found

    def _matching_values(self, matcher: nodes.Matcher, values: set[str]) -> set[str]:
        if matcher.op == "=":
            return {v for v in values if v == matcher.value}
        if matcher.op == "!=":
            return {v for v in values if v != matcher.value}
        listed = sorted(values)
        rows = self._regex.execute(
            "SELECT v FROM unnest(?::VARCHAR[]) t(v) WHERE regexp_full_match(v, ?)",
            [listed, f"^(?:{matcher.value})$"]).fetchall()
        hits = {r[0] for r in rows}
        return hits if matcher.op == "=~" else set(listed) - hits

    def matches_empty(self, matcher: nodes.Matcher) -> bool:
        """Whether ``matcher`` matches a series without its label."""
        return bool(self._matching_values(matcher, {""}))

    def in_range(self, series: list[PromSeries], start_ms: int, end_ms: int
                 ) -> list[PromSeries]:
        """The series whose points span overlaps ``[start_ms, end_ms]`` (Prometheus answers
        from whole blocks overlapping it, as coarsely)."""
        if start_ms > end_ms:
            return []
        spans = self.spans(series)
        return [s for s in series if s.series_id in spans
                and spans[s.series_id][0] <= end_ms and spans[s.series_id][1] >= start_ms]

    def spans(self, series: list[PromSeries]) -> dict[int, tuple[int, int]]:
        """The oldest and the newest point's time (ms) of each series that has points."""
        if not series:
            return {}
        ids = [s.series_id for s in series]
        _, rows = fetch_all(self.con, """
            SELECT series_id, min(time_unix_nano) // 1000000, max(time_unix_nano) // 1000000
            FROM (
                SELECT series_id, time_unix_nano FROM points_gauge
                WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                UNION ALL SELECT series_id, time_unix_nano FROM points_sum
                WHERE series_id IN (SELECT unnest(?::UBIGINT[])))
            GROUP BY series_id""", [ids, ids], self.timeout)
        return {int(sid): (int(lo), int(hi)) for sid, lo, hi in rows}

    def samples(self, series: list[PromSeries], lo_ms: int, hi_ms: int) -> dict[int, Samples]:
        """Each series' samples with ``lo_ms <= t <= hi_ms``, in time order."""
        out: dict[int, Samples] = {s.series_id: Samples([], [], []) for s in series}
        for kind in NUMBER_KINDS:
            ids = [s.series_id for s in series if s.kind == kind]
            if not ids:
                continue
            _, rows = fetch_all(self.con, f"""
                SELECT series_id, time_unix_nano // 1000000 AS t,
                       coalesce(value_int::DOUBLE, value) AS v, (flags & 1) <> 0 AS stale
                FROM points_{kind}
                WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                  AND time_unix_nano BETWEEN ? AND ?
                QUALIFY row_number() OVER (PARTITION BY series_id, time_unix_nano) = 1
                ORDER BY series_id, time_unix_nano""",
                [ids, lo_ms * 1_000_000, hi_ms * 1_000_000 + 999_999], self.timeout)
            for sid, t, v, stale in rows:
                got = out[int(sid)]
                if got.times and got.times[-1] == t:  # two points in one millisecond
                    got.values[-1], got.stale[-1] = float(v), bool(stale)
                    continue
                got.times.append(int(t))
                got.values.append(float("nan") if v is None else float(v))
                got.stale.append(bool(stale))
        return out


def _entries(entries: Any) -> dict[str, str]:
    if entries is None:
        return {}
    if isinstance(entries, str):
        return dict(json.loads(entries))
    return {str(e["key"]): str(e["value"]) for e in entries}


__all__ = ["NotServedYet", "PromSeries", "PromStore", "Samples"]
