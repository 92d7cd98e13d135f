"""``DuckDBStore``: the ``Store`` over one DuckDB file, as ``serve`` and the embedded
exporter open it.

It assembles what the file needs: the connection that can be reopened under its holders
(``connection``), the series limits, the one writer with its disk-failure recovery and
old-points check, and the roll-up and retention thread (``rollups``).  The face says which
of those it runs in ``DuckDBStoreOptions``, built from its settings.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import duckdb

from .connection import StoreConnection
from .disk_failure import Recovery, StoreUnavailable, disk_failure
from .old_points import OldPointCheck
from .rollups import Maintenance, Retention
from .seam import StoreMaintenance, StoreWriter
from .series_limits import SeriesLimits
from .store import StoreError, lock_configuration, open_store
from .writer import StoreBusy, Writer, WriterClosed


class CheckpointFailed(StoreError):
    """Closing could not checkpoint the file (a full disk, say); every committed point is in
    its write-ahead log, which the next opening replays.  ``detail`` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class DuckDBStoreOptions:
    """How to open and run the store: ``serve`` sets every field from its settings; the
    embedded exporter keeps the defaults (no roll-ups, no recovery, no limits)."""

    path: str
    memory_limit: str | None = None
    # Run on the connection at every opening (the query room's SQL helpers).
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    # Fix DuckDB's settings before any user SQL can arrive (``store.lock_configuration``).
    lock_configuration: bool = False
    # Refuse writes while the disk fails them and retry until it takes them again; without
    # it a failed write fails only its batch.
    recover_from_disk_failures: bool = False
    max_pending_points: int = 2_000_000
    max_series: int = 0
    max_series_per_metric: int = 0
    series_cache_size: int = 1_000_000
    # Roll-ups, retention and the refusal of points older than raw retention run only with
    # a retention (not in embedded mode); ``retention_raw_setting`` is how the refusals name
    # the setting.
    retention: Retention | None = None
    retention_raw_setting: str = ""
    rollup_delay: dt.timedelta = dt.timedelta(0)
    rollup_interval_seconds: float = 30.0


class DuckDBStore:
    """The store at ``options.path``, opened by ``open``; every part holds this object."""

    def __init__(self, options: DuckDBStoreOptions, connection: StoreConnection) -> None:
        self.options = options
        self._connection = connection
        # The writers hold the store as a DuckDB connection, one that can be reopened
        # under them after DuckDB invalidates the database (``connection``).
        con = cast(duckdb.DuckDBPyConnection, connection)
        recovery = (Recovery(os.path.dirname(os.path.abspath(options.path)),
                             connection.reopen, connection.usable)
                    if options.recover_from_disk_failures else None)
        retention = options.retention
        old_points = (OldPointCheck(retention.raw, options.retention_raw_setting)
                      if retention is not None and retention.raw is not None else None)
        limits = SeriesLimits.load(con, options.max_series, options.max_series_per_metric)
        self._writer = Writer(con, None, options.max_pending_points, old_points, recovery,
                              limits=limits, series_cache_size=options.series_cache_size)
        self._maintenance = (Maintenance(con, retention, delay=options.rollup_delay,
                                         interval=options.rollup_interval_seconds,
                                         on_error=self._writer.store_failed,
                                         horizon=self._writer.horizon)
                             if retention is not None else None)
        self.busy_errors: tuple[type[Exception], ...] = (
            (StoreBusy, StoreUnavailable, WriterClosed) if recovery is not None
            else (StoreBusy, WriterClosed))

    @classmethod
    def open(cls, options: DuckDBStoreOptions) -> DuckDBStore:
        """Open (creating if needed) the file with its schema; ``StoreError`` (``StoreLocked``
        when another process holds it) says why not."""
        return cls(options, StoreConnection(lambda: _open(options)))

    @property
    def writer(self) -> StoreWriter:
        return self._writer

    @property
    def maintenance(self) -> StoreMaintenance:
        if self._maintenance is None:
            raise StoreError(f"{self.options.path}: opened without a retention, so without "
                             "roll-ups")
        return self._maintenance

    @property
    def reopens(self) -> int:
        return self._connection.reopens

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._connection.cursor()

    def unavailable(self) -> str | None:
        return self._writer.unavailable

    def close(self, timeout: float = 30.0) -> None:
        try:
            if self._maintenance is not None:
                self._maintenance.stop()
            self._writer.close(timeout)
            self._checkpoint()
        finally:
            self._connection.close()

    def _checkpoint(self) -> None:
        try:
            self._connection.execute("CHECKPOINT")
        except (duckdb.Error, StoreUnavailable) as exc:
            failure = disk_failure(exc)
            raise CheckpointFailed(failure.detail if failure else str(exc).splitlines()[0]
                                   ) from exc


def _open(options: DuckDBStoreOptions) -> duckdb.DuckDBPyConnection:
    """The store at start and at every reopen: prepared, then its configuration locked."""
    con: duckdb.DuckDBPyConnection = open_store(options.path, options.memory_limit)
    if options.prepare is not None:
        options.prepare(con)
    if options.lock_configuration:
        lock_configuration(con)
    return con
