"""What the receiver hands the store: one request's points, by kind, and their series.

The receiver decodes OTLP into a ``DecodedBatch``; the store's writer takes it whole
(``Writer.submit``).  The columns are the store's own (``POINT_SCHEMAS``: the point tables
without ``time``, which the store derives), so nothing is renamed on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pyarrow as pa

# The first few reasons for rejected points go back to the sender (``partial_success``).
_MAX_MESSAGES = 5

_EXEMPLARS = pa.list_(pa.struct([
    ("filtered_attributes", pa.string()),
    ("time_unix_nano", pa.int64()),
    ("value", pa.float64()),
    ("value_int", pa.int64()),
    ("span_id", pa.string()),
    ("trace_id", pa.string()),
]))
_QUANTILES = pa.list_(pa.struct([("quantile", pa.float64()), ("value", pa.float64())]))

_COMMON = [
    ("series_id", pa.uint64()),
    ("start_time_unix_nano", pa.int64()),
    ("time_unix_nano", pa.int64()),
]
_NUMBER = [("value", pa.float64()), ("value_int", pa.int64()), ("flags", pa.uint32()),
           ("exemplars", _EXEMPLARS)]
_HIST_HEAD = [("count", pa.uint64()), ("sum", pa.float64()), ("min", pa.float64()),
              ("max", pa.float64())]

POINT_SCHEMAS: dict[str, list[tuple[str, pa.DataType]]] = {
    "gauge": _COMMON + _NUMBER,
    "sum": _COMMON + _NUMBER,
    "histogram": _COMMON + _HIST_HEAD + [
        ("bucket_counts", pa.list_(pa.uint64())),
        ("explicit_bounds", pa.list_(pa.float64())),
        ("flags", pa.uint32()), ("exemplars", _EXEMPLARS)],
    "exponential_histogram": _COMMON + _HIST_HEAD + [
        ("scale", pa.int32()), ("zero_count", pa.uint64()), ("zero_threshold", pa.float64()),
        ("positive_offset", pa.int32()), ("positive_bucket_counts", pa.list_(pa.uint64())),
        ("negative_offset", pa.int32()), ("negative_bucket_counts", pa.list_(pa.uint64())),
        ("flags", pa.uint32()), ("exemplars", _EXEMPLARS)],
    "summary": _COMMON + [("count", pa.uint64()), ("sum", pa.float64()),
                          ("quantile_values", _QUANTILES), ("flags", pa.uint32())],
}


@dataclass(frozen=True)
class SeriesRow:
    """A series as stored once in the ``series`` table."""

    series_id: int
    metric_type: str
    metric_name: str
    metric_description: str
    metric_unit: str
    aggregation_temporality: int | None
    is_monotonic: bool | None
    service_name: str | None
    resource_attributes: list[tuple[str, str]]
    resource_attributes_typed: str
    resource_dropped_attributes_count: int
    resource_schema_url: str
    scope_name: str
    scope_version: str
    scope_attributes: list[tuple[str, str]]
    scope_attributes_typed: str
    scope_dropped_attributes_count: int
    scope_schema_url: str
    attributes: list[tuple[str, str]]
    attributes_typed: str
    metric_metadata: str | None


# The reason ``DecodedBatch.reject`` counts under: points the decoder found malformed.
INVALID = "invalid"


class Refusal(NamedTuple):
    """Decoded points a check refused to store (``DecodedBatch.refuse``), reported to the
    sender in ``partial_success`` and counted on /api/v1/status under ``reason``."""

    reason: str  # a short key naming the check or setting, e.g. "retention_raw"
    points: int
    message: str  # for the sender: what was refused and which setting refused it


@dataclass
class DecodedBatch:
    """Columns per metric kind, the series they reference, and what was rejected.

    Points read field by field are in ``columns`` (lists); points read in bulk are already
    Arrow tables in ``tables``, with the same columns.  ``rejected`` counts every point the
    sender is told was not stored: malformed ones (``reject``) and ones a later check refused
    (``refuse``); the reply and /api/v1/status take them from here.
    """

    columns: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    series: dict[int, SeriesRow] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    problems: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    # Set by ``arrow_batches.prepare`` (in a decode worker): each kind's finished table;
    # ``columns`` and ``tables`` are then empty.
    prepared: dict[str, pa.Table] | None = None
    # Set by the writer: new series it refused (cardinality limits), which are not stored.
    refused_series: set[int] = field(default_factory=set)

    def reject(self, count: int, message: str) -> None:
        """Count ``count`` malformed points; the first few messages are kept for the reply."""
        self.rejected += count
        self.problems += 1
        if len(self.errors) < _MAX_MESSAGES:
            self.errors.append(message)

    def refuse(self, reason: str, points: int, message: str) -> None:
        """Take ``points`` accepted points out of the batch's count (the caller has removed
        them from its tables) and report them: one ``message`` per check, always sent."""
        self.accepted -= points
        self.rejected += points
        self.refusals.append(Refusal(reason, points, message))

    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected points per reason: ``INVALID`` and each refusal's own."""
        counts: dict[str, int] = {}
        refused = 0
        for r in self.refusals:
            counts[r.reason] = counts.get(r.reason, 0) + r.points
            refused += r.points
        if self.rejected > refused:
            counts[INVALID] = self.rejected - refused
        return counts

    def kind_columns(self, kind: str) -> dict[str, list[Any]]:
        cols = self.columns.get(kind)
        if cols is None:
            cols = {name: [] for name, _ in POINT_SCHEMAS[kind]}
            self.columns[kind] = cols
        return cols

    @property
    def error_message(self) -> str:
        more = self.problems - len(self.errors)
        extra = f"; and {more} more problems like these" if more > 0 else ""
        return "; ".join([r.message for r in self.refusals] + self.errors) + extra
