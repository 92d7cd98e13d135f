"""Read-only SQL on the running store, checked twice.

First a clear refusal for anything that is not a single SELECT that only reads
(``sql_guard``); then the database itself enforces it, whatever the check missed: each
query runs on a cursor of its own inside ``BEGIN TRANSACTION READ ONLY`` (DuckDB refuses
any write in it: ``DELETE … RETURNING`` in a CTE, ``nextval``, ``force_checkpoint``), the
server locks DuckDB's configuration once it is set up (no ``SET``/``RESET``, nor
``enable_logging()`` and the like), the store is opened with external access disabled (no
files, no network, no extensions), and a timer interrupts a query past its time limit.
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

from .sql_guard import RefusedSql, check_statement, refusal
from .storage.disk_failure import StoreUnavailable, disk_failure


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
    """Interrupt what ``cursor`` runs after ``timeout`` s; DuckDB errors become QueryError,
    but an invalidated database (a failed write of the disk) ``StoreUnavailable``."""
    timer = threading.Timer(timeout, cursor.interrupt)
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise QueryError(f"query exceeded the time limit of {timeout:g} s "
                         "(setting sql_timeout_seconds)") from None
    except duckdb.FatalException as exc:
        failure = disk_failure(exc)
        raise StoreUnavailable(failure.reason if failure else str(exc)) from None
    except duckdb.Error as exc:
        raise QueryError(refusal(exc) or str(exc)) from None
    finally:
        timer.cancel()


@contextlib.contextmanager
def read_only_cursor(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of its own inside a read-only transaction, in which DuckDB refuses every
    write; closed (and so rolled back) on the way out."""
    cursor = con.cursor()
    try:
        try:
            cursor.execute("BEGIN TRANSACTION READ ONLY")
        except duckdb.FatalException:
            raise  # an invalidated store (a full disk): the API answers 503 with why
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        yield cursor
    finally:
        cursor.close()


def run_query(con: duckdb.DuckDBPyConnection, sql: str, timeout: float,
              row_limit: int) -> QueryResult:
    """Run user SQL ``sql`` read-only on a cursor of its own; at most ``row_limit`` rows."""
    with read_only_cursor(con) as cursor, time_limited(cursor, timeout):
        try:
            check_statement(cursor, sql)
        except RefusedSql as exc:
            raise QueryError(str(exc)) from None
        cursor.execute(sql)
        description = cursor.description or []
        rows = cursor.fetchmany(row_limit + 1)
    return QueryResult(
        columns=[d[0] for d in description],
        types=[str(d[1]) for d in description],
        rows=[[jsonable(v) for v in row] for row in rows[:row_limit]],
        truncated=len(rows) > row_limit,
    )


def fetch_all(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any],
              timeout: float) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run trusted SQL (the API's own) with bound parameters under the time limit."""
    with read_only_cursor(con) as cursor, time_limited(cursor, timeout):
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        return names, cursor.fetchall()


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
