"""The store as Prometheus sees it: series under Prometheus labels, and their samples.

This is the simple road of docs/design/prometheus.md §10.3: the ``series`` table is read once
per change (rows are only ever added, so its row count tells), every row gets its
Prometheus labels (``labels``), and matchers run in Python over them — regexes through
DuckDB's RE2, Go's syntax.  The postings index of the design replaces the matching later;
what it answers must stay the same.

Gauges and sums (cumulative; delta sums are listed but not evaluated yet) are Prometheus
series, each histogram (explicit buckets) the classic family ``x_bucket{le}`` (cumulative
counts, ``le`` written as Go's ``FormatFloat 'f'``, ``+Inf`` = the count), ``x_sum`` and
``x_count``, each summary ``x{quantile}``, ``x_sum`` and ``x_count``; the ``le`` and
``quantile`` values come from the points (``split_values``).  A selector that matches an
exponential histogram's family is refused with ``NotServedYet`` rather than answered
without them.
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

from . import format as fmt
from . import nodes
from .labels import label_name, metadata_unit, metric_name, series_labels

Labels = tuple[tuple[str, str], ...]
NUMBER_KINDS = ("gauge", "sum")
# The Prometheus series of one store series of these kinds: part -> name suffix.
FAMILY_PARTS = {"histogram": {"bucket": "_bucket", "sum": "_sum", "count": "_count"},
                "summary": {"quantile": "", "sum": "_sum", "count": "_count"}}
# The label a part's points fan out into (a bucket per le, a quantile per quantile).
SPLIT_LABEL = {"bucket": "le", "quantile": "quantile"}
_FAMILY_SUFFIXES = {"exponential_histogram": ("",)}


_TYPES = {"gauge": "gauge", "sum": "counter", "histogram": "histogram",
          "exponential_histogram": "histogram", "summary": "summary"}


MAX_SAMPLES = 5_000_000  # stored points one query may load (Prometheus' --query.max-samples)


class TooManySamples(Exception):
    """A query would load more than ``max_samples`` points."""


class NotServedYet(Exception):
    """A selector matched series of a kind not served as Prometheus series yet."""


@dataclass(frozen=True)
class PromSeries:
    series_id: int
    kind: str  # gauge | sum | histogram
    delta: bool
    labels: Labels  # sorted, __name__ included (a bucket's without its le)
    part: str = ""  # of a histogram: bucket | sum | count


@dataclass
class Samples:
    times: list[int]
    values: list[float]
    stale: list[bool]


class PromStore:
    """Prometheus series and samples over the store's read-only cursors."""

    def __init__(self, con: Cursors, timeout: float, max_samples: int = MAX_SAMPLES) -> None:
        self.con = con
        self.timeout = timeout
        self.max_samples = max_samples
        self.loaded = threading.local()  # points loaded by the query running on this thread
        self._lock = threading.Lock()
        self._rows = -1
        self._series: list[PromSeries] = []
        self._unserved: list[PromSeries] = []
        self._metadata: dict[str, set[tuple[str, str, str]]] = {}
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
                   map_entries(resource_attributes) AS resource, metric_description
            FROM series ORDER BY series_id""", [], self.timeout)
        self._series, self._unserved, self._metadata = [], [], {}
        for sid, kind, name, unit, monotonic, temporality, attrs, resource, help_ in rows:
            prom = metric_name(name, unit, kind, monotonic)
            self._metadata.setdefault(prom, set()).add(
                (_TYPES[kind] if kind != "sum" or monotonic else "gauge", help_ or "",
                 metadata_unit(prom, unit)))
            if kind in NUMBER_KINDS:
                labels = series_labels(prom, _entries(attrs), _entries(resource))
                self._series.append(PromSeries(int(sid), kind, temporality == 1 and kind == "sum",
                                               tuple(sorted(labels.items()))))
                continue
            if kind in FAMILY_PARTS:
                for part, suffix in FAMILY_PARTS[kind].items():
                    labels = series_labels(prom + suffix, _entries(attrs), _entries(resource))
                    self._series.append(PromSeries(int(sid), kind, temporality == 1,
                                                   tuple(sorted(labels.items())), part))
                continue
            for suffix in _FAMILY_SUFFIXES.get(kind, ("",)):
                labels = series_labels(prom + suffix, _entries(attrs), _entries(resource))
                self._unserved.append(PromSeries(int(sid), kind, False,
                                                 tuple(sorted(labels.items()))))

    def metadata(self) -> dict[str, set[tuple[str, str, str]]]:
        """Metric family name -> its distinct (type, help, unit)."""
        self.all_series()
        return self._metadata

    def select(self, matchers: tuple[nodes.Matcher, ...]) -> list[PromSeries]:
        """The series every matcher matches (a missing label compares as ""); a bucket
        series matches whatever its ``le`` matchers say (``bucket_le`` applies them once
        its points give the ``le`` values)."""
        found = self.all_series()
        chosen = self._filter([s for s in found if s.part not in SPLIT_LABEL], matchers)
        for part, label in SPLIT_LABEL.items():
            chosen += self._filter([s for s in found if s.part == part],
                                   tuple(m for m in matchers if m.name != label))
        return sorted(chosen, key=lambda s: s.series_id)

    def split_matches(self, matchers: tuple[nodes.Matcher, ...], label: str, value: str
                      ) -> bool:
        """Whether the matchers on ``label`` (``le``, ``quantile``) match ``value``."""
        return all(self._matching_values(m, {value}) for m in matchers if m.name == label)

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
                WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                UNION ALL SELECT series_id, time_unix_nano FROM points_histogram
                WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                UNION ALL SELECT series_id, time_unix_nano FROM points_summary
                WHERE series_id IN (SELECT unnest(?::UBIGINT[])))
            GROUP BY series_id""", [ids, ids, ids, ids], self.timeout)
        return {int(sid): (int(lo), int(hi)) for sid, lo, hi in rows}

    def split_values(self, series: list[PromSeries], start_ms: int, end_ms: int
                     ) -> dict[int, set[str]]:
        """The ``le`` values each histogram's points in ``[start_ms, end_ms]`` give, and the
        ``quantile`` values each summary's."""
        found = self._bucket_les([s for s in series if s.kind == "histogram"], start_ms, end_ms)
        ids = sorted({s.series_id for s in series if s.kind == "summary"})
        if ids:
            _, rows = fetch_all(self.con, """
                SELECT series_id, list(DISTINCT q.quantile) FROM (
                    SELECT series_id, unnest(quantile_values) AS q FROM points_summary
                    WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                      AND time_unix_nano BETWEEN ? AND ?)
                GROUP BY series_id""", [ids, _nanos(start_ms), _nanos(end_ms, 999_999)],
                self.timeout)
            found.update({int(sid): {fmt.fixed(float(q)) for q in quantiles}
                          for sid, quantiles in rows})
        return found

    def _bucket_les(self, series: list[PromSeries], start_ms: int, end_ms: int
                    ) -> dict[int, set[str]]:
        ids = sorted({s.series_id for s in series})
        if not ids:
            return {}
        lo, hi = _nanos(start_ms), _nanos(end_ms, 999_999)
        _, rows = fetch_all(self.con, """
            SELECT series_id, list(DISTINCT bound) FROM (
                SELECT series_id, unnest(explicit_bounds) AS bound FROM points_histogram
                WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                  AND time_unix_nano BETWEEN ? AND ?)
            GROUP BY series_id""", [ids, lo, hi], self.timeout)
        found = {int(sid): {fmt.fixed(float(b)) for b in bounds} | {"+Inf"}
                 for sid, bounds in rows}
        _, counted = fetch_all(self.con, """
            SELECT DISTINCT series_id FROM points_histogram
            WHERE series_id IN (SELECT unnest(?::UBIGINT[])) AND time_unix_nano BETWEEN ? AND ?
            """, [ids, lo, hi], self.timeout)
        for (sid,) in counted:  # a histogram with no bounds still has its +Inf bucket
            found.setdefault(int(sid), {"+Inf"})
        return found

    def exemplars(self, series: list[PromSeries], start_ms: int, end_ms: int
                  ) -> dict[int, list[tuple[int, float, dict[str, str]]]]:
        """Each gauge or sum series' exemplars with times in ``[start_ms, end_ms]``: (time
        ms, value, labels: ``trace_id``, ``span_id`` and the filtered attributes)."""
        out: dict[int, list[tuple[int, float, dict[str, str]]]] = {}
        lo, hi = _nanos(start_ms), _nanos(end_ms, 999_999)
        for kind in NUMBER_KINDS:
            ids = [s.series_id for s in series if s.kind == kind and not s.part]
            if not ids:
                continue
            rows = self._point_rows(f"""
                SELECT series_id, e.time_unix_nano // 1000000,
                       coalesce(e.value_int::DOUBLE, e.value), e.trace_id, e.span_id,
                       e.filtered_attributes
                FROM (SELECT series_id, unnest(exemplars) AS e FROM points_{kind}
                      WHERE series_id IN (SELECT unnest(?::UBIGINT[])) AND len(exemplars) > 0)
                WHERE e.time_unix_nano BETWEEN ? AND ?
                ORDER BY series_id, e.time_unix_nano""", [ids, lo, hi])
            for sid, t, value, trace, span, attributes in rows:
                labels = {label_name(k): _typed_text(v)
                          for k, v in (json.loads(attributes) if attributes else {}).items()}
                if trace:
                    labels["trace_id"] = trace
                if span:
                    labels["span_id"] = span
                out.setdefault(int(sid), []).append(
                    (int(t), float("nan") if value is None else float(value), labels))
        return out

    def start_query(self) -> None:
        """Count the points the query now starting on this thread loads from zero."""
        self.loaded.count = 0

    def _point_rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Point rows, counted against ``max_samples`` for the whole query."""
        done: int = getattr(self.loaded, "count", 0)
        rows: list[tuple[Any, ...]] = fetch_all(self.con, sql, params, self.timeout,
                                                max_rows=max(0, self.max_samples - done))[1]
        self.loaded.count = done + len(rows)
        if done + len(rows) > self.max_samples:
            raise TooManySamples()
        return rows

    def samples(self, series: list[PromSeries], lo_ms: int, hi_ms: int
                ) -> dict[tuple[int, str], dict[str, Samples]]:
        """Each series' samples with ``lo_ms <= t <= hi_ms``, in time order, keyed by
        (series id, part) and then ``le`` (``""`` but for buckets)."""
        numbers = self._number_samples([s for s in series if not s.part], lo_ms, hi_ms)
        out = {(sid, ""): {"": got} for sid, got in numbers.items()}
        histograms = sorted({s.series_id for s in series if s.kind == "histogram"})
        if histograms:
            out.update(self._histogram_samples(histograms, lo_ms, hi_ms))
        summaries = sorted({s.series_id for s in series if s.kind == "summary"})
        if summaries:
            out.update(self._summary_samples(summaries, lo_ms, hi_ms))
        return out

    def _summary_samples(self, ids: list[int], lo_ms: int, hi_ms: int
                         ) -> dict[tuple[int, str], dict[str, Samples]]:
        rows = self._point_rows("""
            SELECT series_id, time_unix_nano // 1000000 AS t, count, sum, quantile_values,
                   (flags & 1) <> 0 AS stale
            FROM points_summary
            WHERE series_id IN (SELECT unnest(?::UBIGINT[])) AND time_unix_nano BETWEEN ? AND ?
            QUALIFY row_number() OVER (PARTITION BY series_id, time_unix_nano) = 1
            ORDER BY series_id, time_unix_nano""", [ids, _nanos(lo_ms), _nanos(hi_ms, 999_999)])
        out: dict[tuple[int, str], dict[str, Samples]] = {}
        for sid, t, count, total, quantiles, stale in rows:
            parts = {"count": {"": float(count)}, "sum": {"": float(total)},
                     "quantile": {fmt.fixed(float(q["quantile"])): float(q["value"])
                                  for q in quantiles}}
            for part, by_label in parts.items():
                into = out.setdefault((int(sid), part), {})
                for value_label, value in by_label.items():
                    _append(into.setdefault(value_label, Samples([], [], [])), int(t), value,
                            bool(stale))
        return out

    def _histogram_samples(self, ids: list[int], lo_ms: int, hi_ms: int
                           ) -> dict[tuple[int, str], dict[str, Samples]]:
        rows = self._point_rows("""
            SELECT series_id, time_unix_nano // 1000000 AS t, count, sum, bucket_counts,
                   explicit_bounds, (flags & 1) <> 0 AS stale
            FROM points_histogram
            WHERE series_id IN (SELECT unnest(?::UBIGINT[])) AND time_unix_nano BETWEEN ? AND ?
            QUALIFY row_number() OVER (PARTITION BY series_id, time_unix_nano) = 1
            ORDER BY series_id, time_unix_nano""",
            [ids, _nanos(lo_ms), _nanos(hi_ms, 999_999)])
        out: dict[tuple[int, str], dict[str, Samples]] = {}
        for sid, t, count, total, counts, bounds, stale in rows:
            sid, t, stale = int(sid), int(t), bool(stale)
            values = {"": float(count)}
            cumulative = 0
            buckets: dict[str, float] = {}
            for bound, n in zip(bounds, counts, strict=False):
                cumulative += n
                buckets[fmt.fixed(float(bound))] = float(cumulative)
            buckets["+Inf"] = float(count)
            parts = {"count": values, "bucket": buckets}
            if total is not None:
                parts["sum"] = {"": float(total)}
            for part, by_le in parts.items():
                into = out.setdefault((sid, part), {})
                for le, value in by_le.items():
                    _append(into.setdefault(le, Samples([], [], [])), t, value, stale)
        return out

    def _number_samples(self, series: list[PromSeries], lo_ms: int, hi_ms: int
                        ) -> dict[int, Samples]:
        out: dict[int, Samples] = {s.series_id: Samples([], [], []) for s in series}
        for kind in NUMBER_KINDS:
            ids = [s.series_id for s in series if s.kind == kind]
            if not ids:
                continue
            rows = self._point_rows(f"""
                SELECT series_id, time_unix_nano // 1000000 AS t,
                       coalesce(value_int::DOUBLE, value) AS v, (flags & 1) <> 0 AS stale
                FROM points_{kind}
                WHERE series_id IN (SELECT unnest(?::UBIGINT[]))
                  AND time_unix_nano BETWEEN ? AND ?
                QUALIFY row_number() OVER (PARTITION BY series_id, time_unix_nano) = 1
                ORDER BY series_id, time_unix_nano""",
                [ids, _nanos(lo_ms), _nanos(hi_ms, 999_999)])
            for sid, t, v, stale in rows:
                _append(out[int(sid)], int(t), float("nan") if v is None else float(v),
                        bool(stale))
        return out


def _typed_text(value: Any) -> str:
    """The string form of an attribute value stored as OTLP/JSON (``{"stringValue": "a"}``,
    ``{"intValue": 5}``, ``{"boolValue": true}``)."""
    if isinstance(value, dict) and len(value) == 1:
        kind, inner = next(iter(value.items()))
        if kind == "stringValue":
            return str(inner)
        if kind == "boolValue":
            return "true" if inner else "false"
        if kind in ("intValue", "doubleValue", "bytesValue"):
            return str(inner)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _nanos(ms: int, extra: int = 0) -> int:
    """Milliseconds as the store's nanoseconds, kept inside BIGINT (Grafana's exemplar probe
    sends milliseconds where seconds belong: times 56,000 years ahead)."""
    return max(-(2**63), min(2**63 - 1, ms * 1_000_000 + extra))


def _append(samples: Samples, t: int, value: float, stale: bool) -> None:
    if samples.times and samples.times[-1] == t:  # two points in one millisecond: the later
        samples.values[-1], samples.stale[-1] = value, stale
        return
    samples.times.append(t)
    samples.values.append(value)
    samples.stale.append(stale)


def _entries(entries: Any) -> dict[str, str]:
    if entries is None:
        return {}
    if isinstance(entries, str):
        return dict(json.loads(entries))
    return {str(e["key"]): str(e["value"]) for e in entries}


__all__ = ["MAX_SAMPLES", "NotServedYet", "PromSeries", "PromStore", "Samples",
           "TooManySamples"]
