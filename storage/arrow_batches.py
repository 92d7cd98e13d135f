"""Column lists from the decoder to Arrow tables shaped like the store's tables.

DuckDB ingests Arrow at over a million rows a second; building the tables here, outside the
writer thread, keeps the single writer doing nothing but inserts and commits.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from .batch import POINT_SCHEMAS, DecodedBatch, SeriesRow

_STR_MAP = pa.map_(pa.string(), pa.string())
_POINT_ARROW = {kind: pa.schema(fields) for kind, fields in POINT_SCHEMAS.items()}
_US_UTC = pa.timestamp("us", tz="UTC")
# What ``points_table`` returns: the point columns and the TIMESTAMPTZ ``time``.
PREPARED_SCHEMAS = {kind: schema.append(pa.field("time", _US_UTC))
                    for kind, schema in _POINT_ARROW.items()}

SERIES_SCHEMA = pa.schema([
    ("series_id", pa.uint64()), ("metric_type", pa.string()), ("metric_name", pa.string()),
    ("metric_description", pa.string()), ("metric_unit", pa.string()),
    ("aggregation_temporality", pa.int32()), ("is_monotonic", pa.bool_()),
    ("service_name", pa.string()), ("resource_attributes", _STR_MAP),
    ("resource_attributes_typed", pa.string()),
    ("resource_dropped_attributes_count", pa.uint32()), ("resource_schema_url", pa.string()),
    ("scope_name", pa.string()), ("scope_version", pa.string()),
    ("scope_attributes", _STR_MAP), ("scope_attributes_typed", pa.string()),
    ("scope_dropped_attributes_count", pa.uint32()), ("scope_schema_url", pa.string()),
    ("attributes", _STR_MAP), ("attributes_typed", pa.string()),
    ("metric_metadata", pa.string()),
])

_SERIES_FIELDS = operator.attrgetter(*SERIES_SCHEMA.names)


def points_table(kind: str, columns: dict[str, list[Any]], tables: Iterable[pa.Table] = ()
                 ) -> pa.Table | None:
    """One kind's points as one Arrow table, plus the TIMESTAMPTZ ``time`` column.

    ``columns`` are the decoder's lists, ``tables`` what it read in bulk (same columns, no
    ``time``); None when both are empty.
    """
    schema = _POINT_ARROW[kind]
    parts = [t for t in tables if t.num_rows]
    if columns.get("series_id"):
        parts.append(pa.Table.from_arrays(
            [pa.array(columns[f.name], type=f.type) for f in schema], schema=schema))
    if not parts:
        return None
    table = parts[0] if len(parts) == 1 else pa.concat_tables(
        [t.cast(schema) if t.schema != schema else t for t in parts])
    if table.schema != schema:
        table = table.cast(schema)
    micros = pc.divide(table.column("time_unix_nano"), pa.scalar(1000, pa.int64()))
    return table.append_column(PREPARED_SCHEMAS[kind].field("time"), micros.cast(_US_UTC))


def to_ipc(table: pa.Table) -> pa.Buffer:
    """A prepared table as one Arrow IPC record batch, without its schema (the reader knows
    it: ``PREPARED_SCHEMAS``); far cheaper to write and read than a pickled table."""
    if any(column.num_chunks != 1 for column in table.columns):
        table = table.combine_chunks()
    batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    return batches[0].serialize()


def from_ipc(kind: str, data: bytes | pa.Buffer) -> pa.Table:
    """``to_ipc``'s table back (zero-copy: it refers to ``data``)."""
    schema = PREPARED_SCHEMAS[kind]
    return pa.Table.from_batches([ipc.read_record_batch(pa.py_buffer(data), schema)], schema)


def prepare(batch: DecodedBatch) -> DecodedBatch:
    """Build ``batch``'s point tables in place (``DecodedBatch.prepared``), so the process
    that decoded it does this work instead of the writer's.

    Series rows stay rows: the writer builds a table of only those it does not have yet.
    """
    prepared = {}
    for kind in {*batch.columns, *batch.tables}:
        table = points_table(kind, batch.columns.get(kind, {}), batch.tables.get(kind, ()))
        if table is not None:
            prepared[kind] = table
    batch.prepared, batch.columns, batch.tables = prepared, {}, {}
    return batch


def series_table(rows: Iterable[SeriesRow]) -> pa.Table:
    """New series rows as an Arrow table (``first_seen`` is added by the writer).

    The series of one resource and scope share their attribute lists (the same objects), so
    each distinct list becomes a map once and the rows take it by index: building a map
    array costs far more per entry than any other column.
    """
    rows = list(rows)
    if not rows:
        return SERIES_SCHEMA.empty_table()
    columns = zip(*map(_SERIES_FIELDS, rows))
    return pa.Table.from_arrays(
        [_shared_column(list(values), f.type) for f, values in zip(SERIES_SCHEMA, columns)],
        schema=SERIES_SCHEMA,
    )


def _shared_column(values: list[Any], dtype: pa.DataType) -> pa.Array:
    if not isinstance(dtype, pa.MapType) or len(values) < 2:
        return pa.array(values, type=dtype)
    slot_of: dict[int, int] = {}
    distinct: list[Any] = []
    indices = []
    for value in values:
        slot = slot_of.get(id(value))
        if slot is None:
            slot = slot_of[id(value)] = len(distinct)
            distinct.append(value)
        indices.append(slot)
    if len(distinct) == len(values):
        return pa.array(values, type=dtype)
    return pa.array(distinct, type=dtype).take(pa.array(indices, pa.int32()))
