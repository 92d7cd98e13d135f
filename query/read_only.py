"""Read-only SQL on the running store, checked twice, its answer bounded.

First a clear refusal for anything that is not a single SELECT that only reads
(``sql_guard``); then the database itself enforces it, whatever the check missed: each
query runs on a cursor of its own inside ``BEGIN TRANSACTION READ ONLY`` (DuckDB refuses
any write in it: ``DELETE … RETURNING`` in a CTE, ``nextval``, ``force_checkpoint``), the
server locks DuckDB's configuration once it is set up (no ``SET``/``RESET``, nor
``enable_logging()`` and the like), and the store is opened with external access disabled
(no files, no network, no extensions).

Every answer is bounded: ``sql_row_limit`` rows, ``sql_max_answer_bytes`` of JSON (413
above it) and one ``Deadline`` (``sql_timeout_seconds``) over running, fetching and
encoding.  The query runs wrapped (``size_guarded``) with each row's size as one more column,
and a row far over the limit stops it inside DuckDB, before it is turned into Python objects
(a 5e7-element ``list()`` would take gigabytes there).  Rows reach Python in chunks sized by
the widest row so far to fit the bytes left, each encoded before the next is fetched.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

import duckdb

from otel_hms.storage.connection import Cursors

from .deadline import Deadline, QueryCancelled, QueryError, TooLarge, time_limited
from .sql_guard import RefusedSql, check_statement

__all__ = ["Deadline", "QueryCancelled", "QueryError", "QueryResult", "SqlLimits", "TooLarge",
           "answer_json", "fetch_all", "jsonable", "read_only_cursor", "run_query",
           "time_limited"]

DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024
CHUNK_ROWS = 1000
GUARD_MARKER = "otel-hms answer guard"
_GUARD_COLUMN = "__otel_hms_answer_bytes"


@dataclass(frozen=True)
class SqlLimits:
    """The bounds of one user query's answer."""
    row_limit: int = 100_000
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES

    def too_large(self) -> TooLarge:
        return TooLarge(f"the answer is larger than sql_max_answer_bytes ({self.max_bytes} "
                        "bytes of JSON); select fewer rows or columns, aggregate in SQL, or "
                        "raise the setting")


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool


@dataclass
class _Answer:
    """An answer as its JSON parts, counted against the byte limit as they are added."""
    columns: list[str]
    types: list[str]
    limits: SqlLimits
    keep_rows: bool
    rows: list[list[Any]]
    parts: list[bytes]
    count: int = 0
    size: int = 0
    truncated: bool = False

    def add(self, chunk: list[tuple[Any, ...]]) -> None:
        room = self.limits.row_limit - self.count
        if len(chunk) > room:
            chunk, self.truncated = chunk[:room], True
        if not chunk:
            return
        values = [[jsonable(v) for v in row[:-1]] for row in chunk]
        part = _dumps(values)[1:-1]
        self.size += len(part) + 1
        if self.size > self.limits.max_bytes:
            raise self.limits.too_large()
        self.parts.append(part)
        self.count += len(chunk)
        if self.keep_rows:
            self.rows.extend(values)

    def json(self) -> bytes:
        return b"".join((b'{"columns":', _dumps(self.columns), b',"types":',
                         _dumps(self.types), b',"rows":[', b",".join(self.parts),
                         b'],"truncated":', b"true" if self.truncated else b"false", b"}"))


def _dumps(value: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def read_only_cursor(con: Cursors) -> _ReadOnly:
    """A cursor of its own inside a read-only transaction, in which DuckDB refuses every
    write; closed (and so rolled back) on the way out."""
    return _ReadOnly(con)


class _ReadOnly:
    def __init__(self, con: Cursors) -> None:
        self.cursor: duckdb.DuckDBPyConnection = con.cursor()

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        try:
            self.cursor.execute("BEGIN TRANSACTION READ ONLY")
        except duckdb.FatalException:
            self.cursor.close()
            raise  # an invalidated store (a full disk): the API answers 503 with why
        except duckdb.Error as exc:
            self.cursor.close()
            raise QueryError(str(exc)) from None
        return self.cursor

    def __exit__(self, *exc: object) -> None:
        self.cursor.close()


# Types whose text form is short and bounded; other columns are measured value by value.
_FIXED_WIDTH = frozenset({
    "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
    "uinteger", "ubigint", "uhugeint", "float", "double", "decimal", "date", "time",
    "time_ns", "time with time zone", "timestamp", "timestamp_s", "timestamp_ms",
    "timestamp_ns", "timestamp with time zone", "timestamptz_ns", "interval", "uuid", "enum",
    "null"})


def size_guarded(cursor: duckdb.DuckDBPyConnection, sql: str, guard_bytes: int) -> str:
    """``sql`` with one more column, each row's size in DuckDB's text form (strings by their
    length, no copy; fixed-width values as 40 bytes; the rest by their text), which stops
    the query (DuckDB's ``error()``) at a row over ``guard_bytes``, before it leaves DuckDB.
    A plain projection: rows flow through in order and none is copied or held back."""
    text = _statement_text(sql)
    sizes = [_size_of(f"#{i}", t.id) for i, t in enumerate(cursor.sql(text).types, 1)]
    size = " + ".join(sizes)
    return (f"SELECT *, CASE WHEN {size} > {int(guard_bytes)} THEN error('{GUARD_MARKER}') "
            f"ELSE {size} END AS {_GUARD_COLUMN} FROM (\n{text}\n) AS __otel_hms_row")


def _size_of(column: str, type_id: str) -> str:
    if type_id in _FIXED_WIDTH:
        return "40"
    if type_id == "varchar":
        return f"coalesce(strlen({column}), 4)"
    if type_id == "blob":
        return f"coalesce(octet_length({column}), 4)"
    return f"coalesce(strlen({column}::VARCHAR), 4)"


def _statement_text(sql: str) -> str:
    """``sql`` without trailing semicolons and comments, to be wrapped as a subquery."""
    end = len(sql)
    for start, kind in reversed(duckdb.tokenize(sql)):
        if kind == duckdb.token_type.comment or sql[start:end].strip() in (";", ""):
            end = start
            continue
        break
    return sql[:end]


def _collect(con: Cursors, sql: str, limit: float | Deadline,
             limits: SqlLimits, keep_rows: bool) -> _Answer:
    deadline = limit if isinstance(limit, Deadline) else Deadline(limit)
    with read_only_cursor(con) as cursor, deadline.watching(cursor):
        try:
            check_statement(cursor, sql)
        except RefusedSql as exc:
            raise QueryError(str(exc)) from None
        try:
            cursor.execute(size_guarded(cursor, sql, 2 * limits.max_bytes))
        except duckdb.InvalidInputException as exc:
            _raise_guard(exc, limits)
        description = (cursor.description or [])[:-1]
        answer = _Answer([d[0] for d in description], [str(d[1]) for d in description],
                         limits, keep_rows, [], [])
        answer.size = len(answer.json())
        rows = 1  # the first chunk is one row; later ones as many as the bytes left allow
        while not answer.truncated:
            deadline.check()
            try:
                chunk = cursor.fetchmany(min(rows, limits.row_limit + 1 - answer.count))
            except duckdb.InvalidInputException as exc:
                _raise_guard(exc, limits)
            if not chunk:
                break
            answer.add(chunk)
            widest = max(int(row[-1]) for row in chunk)
            rows = max(1, min(CHUNK_ROWS, (limits.max_bytes - answer.size) // max(widest, 1)))
        deadline.check()
    return answer


def _raise_guard(exc: duckdb.InvalidInputException, limits: SqlLimits) -> NoReturn:
    if GUARD_MARKER in str(exc):
        raise limits.too_large() from None
    raise exc


def run_query(con: Cursors, sql: str, timeout: float | Deadline,
              row_limit: int, max_bytes: int = DEFAULT_MAX_ANSWER_BYTES) -> QueryResult:
    """Run user SQL ``sql`` read-only on a cursor of its own, within the limits."""
    answer = _collect(con, sql, timeout, SqlLimits(row_limit, max_bytes), keep_rows=True)
    return QueryResult(answer.columns, answer.types, answer.rows, answer.truncated)


def answer_json(con: Cursors, sql: str, deadline: Deadline,
                limits: SqlLimits) -> bytes:
    """The SQL endpoint's answer, ``{columns, types, rows, truncated}``, as JSON bytes."""
    return _collect(con, sql, deadline, limits, keep_rows=False).json()


def fetch_all(con: Cursors, sql: str, params: list[Any] | dict[str, Any],
              timeout: float, max_rows: int | None = None
              ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run trusted SQL (the API's own) with bound parameters under the time limit; with
    ``max_rows``, fetch one row more than it at most (the caller tells there were more)."""
    with read_only_cursor(con) as cursor, time_limited(cursor, timeout):
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows + 1)
        return names, rows


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a DuckDB value (NaN/Inf as strings, times as ISO 8601)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)
