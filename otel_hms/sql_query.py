"""Read-only SQL on the running store, checked twice.

First a clear refusal for anything that is not a single SELECT; then the database itself
enforces it: the store is opened with external access disabled (no files, no network), and
a timer interrupts a query past its time limit.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import math
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb


class QueryError(Exception):
    """The query was refused or failed; the message says why (HTTP 400)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool


@contextlib.contextmanager
def time_limited(cursor: duckdb.DuckDBPyConnection, timeout: float) -> Iterator[None]:
    """Interrupt what ``cursor`` runs after ``timeout`` s; DuckDB errors become QueryError."""
    timer = threading.Timer(timeout, cursor.interrupt)
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise QueryError(f"query exceeded the time limit of {timeout:g} s "
                         "(setting sql_timeout_seconds)") from None
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    finally:
        timer.cancel()


def run_query(con: duckdb.DuckDBPyConnection, sql: str, timeout: float,
              row_limit: int) -> QueryResult:
    cursor = con.cursor()
    try:
        try:
            statements = cursor.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        if len(statements) != 1:
            raise QueryError(f"send exactly one statement (got {len(statements)})")
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise QueryError(f"only read-only SELECT queries are allowed here (got "
                             f"{kind.name}); the store is written by the receiver alone")
        with time_limited(cursor, timeout):
            cursor.execute(sql)
            description = cursor.description or []
            rows = cursor.fetchmany(row_limit + 1)
        return QueryResult(
            columns=[d[0] for d in description],
            types=[str(d[1]) for d in description],
            rows=[[jsonable(v) for v in row] for row in rows[:row_limit]],
            truncated=len(rows) > row_limit,
        )
    finally:
        cursor.close()


def fetch_all(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any],
              timeout: float) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run trusted SQL (the API's own) with bound parameters under the time limit."""
    cursor = con.cursor()
    try:
        with time_limited(cursor, timeout):
            cursor.execute(sql, params)
            names = [d[0] for d in cursor.description or []]
            return names, cursor.fetchall()
    finally:
        cursor.close()


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
