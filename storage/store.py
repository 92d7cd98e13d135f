"""Opening the store file: one process holds it, and a second one is told who does.

The database is opened with external access disabled: nothing in the server reads or writes
files other than the store itself, so user SQL (which runs on cursors of this database)
cannot either.
"""

from __future__ import annotations

import os
import re

import duckdb

from . import schema


class StoreError(Exception):
    """The store file cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process holds the file; ``pid`` and ``program`` say which (when DuckDB tells)."""

    def __init__(self, message: str, pid: int | None = None, program: str = "") -> None:
        super().__init__(message)
        self.pid = pid
        self.program = program


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


def open_store(path: str) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store at ``path`` with its schema installed."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreError(f"--db: directory {parent} does not exist; create it or pick another path")
    try:
        con = duckdb.connect(path, config={"enable_external_access": False})
    except duckdb.IOException as exc:
        held = _LOCK_HOLDER.search(str(exc))
        if held:
            program = os.path.basename(held["exe"])
            raise StoreLocked(
                f"--db: {path} is locked by another process (pid {held['pid']}, "
                f"{program}); stop it or use `otel-hms sql` to query it",
                int(held["pid"]), program) from None
        raise StoreError(f"--db: cannot open {path}: {exc}") from None
    except duckdb.Error as exc:
        raise StoreError(f"--db: {path} is not a usable DuckDB file: {exc}") from None
    # Results render in UTC whatever the machine's zone; comparisons are zone-proof anyway.
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    try:
        schema.install(con)
    except schema.NewerSchema as exc:
        con.close()
        raise StoreError(f"--db: {path}: {exc}") from None
    return con


def known_series_ids(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Every series id already stored, so the writer inserts each series once."""
    rows = con.execute("SELECT series_id FROM series").fetchall()
    return {r[0] for r in rows}
