"""The store's DuckDB connection as every part of ``serve`` holds it, reopened in place.

DuckDB refuses every statement on a database it has invalidated (a checkpoint that failed on
a full disk, see ``disk_failure``) until the database is closed and opened again.  The
writer, the roll-ups, the queries and alerting keep this one object, so ``reopen`` hands
all of them the new database: statements go to the current connection, and cursors taken
from the old one are interrupted and closed (their queries fail; the next ones get new
cursors).
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import duckdb

from .disk_failure import StoreUnavailable
from .seam import Cursors

__all__ = ["REOPENING", "Cursors", "StoreConnection"]

REOPENING = ("the store is being reopened after its disk failed a write; retry in a moment "
             "(GET /readyz answers 200 once it is back)")


class StoreConnection:
    """A ``duckdb.DuckDBPyConnection`` that ``reopen`` can replace under its holders.

    Only ``cursor`` may be called from threads other than the one owning the connection (the
    writer's), as for a plain DuckDB connection.
    """

    def __init__(self, open_store: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._open = open_store
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = open_store()
        self._cursors: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
        self.reopens = 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                raise StoreUnavailable(REOPENING)
            cursor = self._con.cursor()
            self._cursors.add(cursor)
            return cursor

    def __getattr__(self, name: str) -> Any:
        con = self.__dict__.get("_con")
        if con is None:
            raise StoreUnavailable(REOPENING)
        return getattr(con, name)

    def usable(self) -> bool:
        """False when DuckDB has invalidated the database (reads fail too)."""
        try:
            cursor = self.cursor()
        except StoreUnavailable:
            return False
        try:
            cursor.execute("SELECT 1").fetchall()
        except (duckdb.FatalException, duckdb.ConnectionException):
            return False
        finally:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
        return True

    def reopen(self) -> None:
        """Close the database (every cursor of it) and open the file again; raises what
        opening raises, leaving no connection (``cursor`` raises ``StoreUnavailable``) until
        a later ``reopen`` succeeds."""
        with self._lock:
            old, self._con = self._con, None
            if old is not None:
                for cursor in list(self._cursors):
                    with contextlib.suppress(duckdb.Error):
                        cursor.interrupt()
                _close(old)
            self._con = self._open()
            self.reopens += 1

    def close(self) -> None:
        with self._lock:
            old, self._con = self._con, None
        if old is not None:
            _close(old)


def _close(con: duckdb.DuckDBPyConnection, timeout: float = 5.0) -> None:
    """Close ``con`` and its cursors; DuckDB refuses while a cursor is mid-call, briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            con.close()
            return
        except duckdb.Error:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
