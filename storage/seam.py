"""The store as the layers above hold it: ``Store``, the one object a face opens.

A face (``serve``, the embedded exporter) opens one implementation (``DuckDBStore``) and
hands the rest of the program this: readers take ``Cursors``, the receiver submits batches to
its ``writer``, the query service reads the roll-ups' watermarks from its ``maintenance``.
A second engine (ClickHouse) is a second class with these members; nothing above changes.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeAlias

import duckdb

from .batch import DecodedBatch
from .recent_ids import RecentIds
from .series_limits import SeriesLimits
from .writer import WriterStats

# A reader's cursor: the readers' SQL is DuckDB's dialect, so a cursor is DuckDB's too (a
# second engine would answer that SQL or bring its own readers).
Cursor: TypeAlias = duckdb.DuckDBPyConnection


class Cursors(Protocol):
    """The store as its readers and the alert tables hold it: a cursor of their own per
    query or transaction (``StoreConnection``, or any DuckDB connection such as a read-only
    one).  The layers above ask no more of the store than this and the writers'."""

    def cursor(self) -> Cursor: ...


class StoreWriter(Protocol):
    """The store's one writer: batches in, acknowledged once committed, and its counts."""

    def submit(self, batch: DecodedBatch) -> Future[int]: ...

    def incoming(self) -> AbstractContextManager[None]: ...

    @property
    def known(self) -> RecentIds: ...

    @property
    def stats(self) -> WriterStats: ...

    @property
    def pending_points(self) -> int: ...

    @property
    def limits(self) -> SeriesLimits: ...

    @property
    def unavailable(self) -> str | None: ...


class StoreMaintenance(Protocol):
    """Roll-ups and retention in the background: started once, stopped by ``close``."""

    def start(self) -> None: ...

    def known_watermarks(self) -> dict[str, dt.datetime | None]: ...

    def status(self) -> dict[str, Any]: ...


class Store(Cursors, Protocol):
    """Every table and write of the store behind one object."""

    @property
    def writer(self) -> StoreWriter: ...

    @property
    def maintenance(self) -> StoreMaintenance: ...

    @property
    def busy_errors(self) -> tuple[type[Exception], ...]:
        """What a submitted batch fails with when the sender should retry later."""
        ...

    @property
    def reopens(self) -> int: ...

    def unavailable(self) -> str | None:
        """Why the store takes no writes now, or None."""
        ...

    def close(self, timeout: float = 30.0) -> None:
        """Stop the maintenance, commit what is queued, checkpoint and release the store;
        ``CheckpointFailed`` when the checkpoint was refused (nothing committed is lost)."""
        ...
