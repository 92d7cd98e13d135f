"""``otel-hms export``: the store's points as hive-partitioned Parquet that any engine can read.

Layout: ``DIR/kind=<kind>/date=<YYYY-MM-DD>/hour-<HH>.parquet`` (UTC).  Each file holds the
rows of its kind's ClickHouse-shaped view (``otel_metrics_gauge`` …) whose ``TimeUnix`` falls
in its hour, so every row has exactly one home and re-exporting never duplicates: an export
rewrites the hour files its range touches, with the store's rows for the range (and metrics)
it covers plus the rows earlier exports wrote outside it.  Hours the store holds nothing for
are left as they are, so an archive outlives the store's retention.

Why pyarrow writes the files: the store's DuckDB runs with external access disabled, so user
SQL on the server cannot read or write files.  The export keeps it that way: it reads Arrow
batches on its own cursor and writes them with pyarrow in Python; DuckDB never touches a file.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from otel_hms.common.times import EPOCH
from otel_hms.export.files import locked, prepare_root, read_kept, remove_created, replace_file
from otel_hms.export.spec import KINDS, ExportSpec
from otel_hms.storage.connection import Cursors
from otel_hms.storage.nested_columns import WITHOUT_NESTED_FIELDS

HOUR = dt.timedelta(hours=1)
HOUR_US = 3_600_000_000
BATCH_ROWS = 100_000
# Columns DuckDB hands to Arrow as plain strings that hold JSON; written with Parquet's JSON
# logical type so engines (DuckDB among them) read them back as JSON.
JSON_FIELDS = frozenset({"AttributesTyped", "ResourceAttributesTyped", "ScopeAttributesTyped",
                         "FilteredAttributes"})


@dataclass(frozen=True)
class ExportedFile:
    kind: str
    date: str
    path: str  # relative to the dataset root
    rows: int  # rows this export took from the store
    kept: int  # rows an earlier export wrote outside this one's range or metrics


@dataclass(frozen=True)
class ExportResult:
    spec: ExportSpec
    files: tuple[ExportedFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def as_json(self) -> dict[str, Any]:
        s = self.spec
        return {"dir": s.to, "since": s.since.isoformat(), "until": s.until.isoformat(),
                "kinds": list(s.kinds), "metrics": list(s.metrics), "rows": self.rows,
                "files": [vars(f) for f in self.files]}


def run_export(con: Cursors, spec: ExportSpec) -> ExportResult:
    """Write every hour file ``spec`` touches; reads run on a cursor of their own."""
    created = prepare_root(spec.to)
    files: list[ExportedFile] = []
    try:
        with locked(spec.to):
            cursor = con.cursor()
            try:
                for kind in spec.kinds:
                    files.extend(_export_kind(cursor, spec, kind))
            finally:
                cursor.close()
    finally:
        if not files:
            remove_created(created)
    return ExportResult(spec, tuple(files))


def _where(spec: ExportSpec, lo: dt.datetime, hi: dt.datetime) -> tuple[str, list[Any]]:
    sql = "TimeUnix >= ?::TIMESTAMPTZ AND TimeUnix < ?::TIMESTAMPTZ"
    params: list[Any] = [lo, hi]
    if spec.metrics:
        sql += " AND list_contains(?::VARCHAR[], MetricName)"
        params.append(list(spec.metrics))
    return sql, params


def _hours(cursor: duckdb.DuckDBPyConnection, view: str, spec: ExportSpec) -> list[int]:
    """The hours (since the epoch) in which the store holds rows of ``view`` for ``spec``."""
    where, params = _where(spec, spec.since, spec.until)
    rows = cursor.execute(f"SELECT DISTINCT epoch_us(TimeUnix) // {HOUR_US} AS h "
                          f"FROM {view} WHERE {where} ORDER BY h", params).fetchall()
    return [int(r[0]) for r in rows]


def _export_kind(cursor: duckdb.DuckDBPyConnection, spec: ExportSpec,
                 kind: str) -> Iterator[ExportedFile]:
    for hour in _hours(cursor, KINDS[kind], spec):
        yield _export_hour(cursor, spec, kind, EPOCH + hour * HOUR)


class _Counted:
    """Batches cast to the file's schema, counted as they go by."""

    def __init__(self, reader: pa.RecordBatchReader, schema: pa.Schema) -> None:
        self.reader, self.schema, self.rows = reader, schema, 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.reader:
            self.rows += batch.num_rows
            yield batch.cast(self.schema)


def _export_hour(cursor: duckdb.DuckDBPyConnection, spec: ExportSpec, kind: str,
                 start: dt.datetime) -> ExportedFile:
    """Rewrite the file of ``kind``'s hour beginning at ``start``."""
    lo, hi = max(spec.since, start), min(spec.until, start + HOUR)
    date = start.date().isoformat()
    relative = os.path.join(f"kind={kind}", f"date={date}", f"hour-{start.hour:02d}.parquet")
    final = os.path.join(spec.to, relative)
    where, params = _where(spec, lo, hi)
    reader = cursor.sql(f"SELECT {WITHOUT_NESTED_FIELDS} FROM {KINDS[kind]} WHERE {where} "
                        "ORDER BY MetricName, SeriesId, TimeUnix",
                        params=params).to_arrow_reader(BATCH_ROWS)
    from_store = _Counted(reader, json_typed(reader.schema))
    earlier: Iterator[pa.RecordBatch] = iter(())
    whole_hour = lo == start and hi == start + HOUR and not spec.metrics
    if not whole_hour and os.path.exists(final):
        earlier = read_kept(final, from_store.schema, outside(lo, hi, spec.metrics))
    total = replace_file(spec.to, final, from_store.schema, chain(earlier, from_store))
    return ExportedFile(kind, date, relative, from_store.rows, total - from_store.rows)


def outside(lo: dt.datetime, hi: dt.datetime,
            metrics: tuple[str, ...]) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """A filter keeping an earlier export's rows that this one does not cover."""
    def keep(batch: pa.RecordBatch) -> pa.RecordBatch:
        times = batch.column("TimeUnix")
        covered = pc.and_(pc.greater_equal(times, pa.scalar(lo, times.type)),
                          pc.less(times, pa.scalar(hi, times.type)))
        if metrics:
            covered = pc.and_(covered, pc.is_in(batch.column("MetricName"),
                                                value_set=pa.array(metrics, pa.string())))
        return batch.filter(pc.invert(covered))
    return keep


def _json_field(field: pa.Field) -> pa.Field:
    t = field.type
    if field.name in JSON_FIELDS and pa.types.is_string(t):
        return field.with_type(pa.json_(pa.string()))
    if pa.types.is_list(t):
        return field.with_type(pa.list_(_json_field(t.value_field)))
    if pa.types.is_struct(t):
        return field.with_type(pa.struct([_json_field(t.field(i)) for i in range(t.num_fields)]))
    return field


def json_typed(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the JSON-holding string columns typed as JSON."""
    return pa.schema([_json_field(f) for f in schema], metadata=schema.metadata)
