"""Opening the store file: one process holds it, and a second one is told who does.

The database is opened with external access disabled: nothing in the server reads or writes
files other than the store itself, so user SQL (which runs on cursors of this database)
cannot either.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb

from . import schema
from .lock_holder import LockHolder, lock_holder


class StoreError(Exception):
    """The store file cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process holds the file; ``holder`` says which when DuckDB tells: its ``pid``
    and ``program`` (``otel-hms serve`` or the holder's command line)."""

    def __init__(self, message: str, holder: LockHolder | None = None) -> None:
        super().__init__(message)
        self.holder = holder
        self.pid = holder.pid if holder else None
        self.program = holder.command if holder else ""


def open_store(path: str, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store at ``path`` with its schema installed;
    ``memory_limit`` is DuckDB's (for the whole database: no setting bounds one cursor)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreError(f"--db: directory {parent} does not exist; create it or pick another path")
    try:
        config: dict[str, Any] = {"enable_external_access": False}
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        con = duckdb.connect(path, config=config)
    except duckdb.IOException as exc:
        holder = lock_holder(str(exc))
        if holder:
            fix = ("stop it or use `otel-hms sql` to query it" if holder.is_serve
                   else "stop it or pick another --db")
            raise StoreLocked(f"--db: {path} is locked by {holder}; {fix}", holder) from None
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


def lock_configuration(con: duckdb.DuckDBPyConnection) -> None:
    """Fix DuckDB's settings for good, on every cursor: ``SET``, ``RESET`` and the functions
    that change settings (``enable_logging()`` …) fail afterwards.  ``serve`` calls it once
    the store is set up, before any user SQL can arrive; the lock is the database's own
    guard should a query ever get past the SQL endpoint's checks."""
    con.execute("SET lock_configuration = true")


def open_read_only(path: str) -> duckdb.DuckDBPyConnection:
    """The store at ``path`` for reading only (external access off, UTC), for the tools that
    read a file no server holds.  ``StoreLocked`` (with its holder when DuckDB names one) when
    a process holds the file, ``StoreError`` with DuckDB's first line otherwise."""
    try:
        con = duckdb.connect(path, read_only=True, config={"enable_external_access": False})
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        holder = lock_holder(str(exc))
        if holder is not None or "lock" in str(exc).lower():
            raise StoreLocked(first, holder) from None
        raise StoreError(first) from None
    con.execute("SET TimeZone = 'UTC'")
    return con


def known_series_ids(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Every series id already stored, so the writer inserts each series once."""
    rows = con.execute("SELECT series_id FROM series").fetchall()
    return {r[0] for r in rows}
