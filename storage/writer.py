"""The one writer thread that owns the DuckDB write connection.

Requests hand it decoded batches and wait on a future; the thread takes every batch queued
while the previous commit ran and writes them in one transaction (group commit), then
resolves their futures.  An export is acknowledged only after that commit.  The queue is
bounded in points: when it is full ``submit`` raises ``StoreBusy`` so the receiver answers
UNAVAILABLE / 503 and the sender retries, never a silent drop, never unbounded memory.

When the disk fails a write (``disk_failure``: full, say), the batches that were to be
written fail with ``StoreUnavailable`` (UNAVAILABLE / 503 too), ``submit`` refuses more while
``unavailable`` gives the reason, and the thread tries every second whether the disk takes
writes again (reopening the database if DuckDB invalidated it), then goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from otel_hms.receiver.decode import DecodedBatch

from . import late_points, sum_chain
from .arrow_batches import points_table, series_table
from .disk_failure import DiskFailure, Recovery, StoreUnavailable, disk_failure
from .old_points import OldPointCheck
from .schema import POINT_TABLES

log = logging.getLogger("otel_hms.writer")

_OWNER_COLUMNS = ("resource_attributes", "resource_attributes_typed", "scope_attributes",
                  "scope_attributes_typed")
# A group commit stops taking batches past this many points, to bound transaction size.
_GROUP_POINTS = 250_000
# Each insert statement and commit has a fixed cost of a few milliseconds, most of a small
# insert's: while requests are being decoded (``incoming``), a group smaller than this waits
# up to _LINGER_S for their batches.  A lone sender's batch never waits.
_LINGER_POINTS = 48_000
_LINGER_S = 0.025


class StoreBusy(Exception):
    """The write queue is full; the sender should retry later."""


class WriterClosed(Exception):
    """The server is shutting down and takes no more writes."""


class SeriesLost(Exception):
    """A batch's series rows were in an earlier batch that failed; the sender retries."""


@dataclass
class _Pending:
    tables: dict[str, pa.Table]
    series: pa.Table | None
    points: int
    carries: list[int] = field(default_factory=list)  # ids of the series rows in ``series``
    needs: set[int] = field(default_factory=set)  # ids whose rows an earlier batch carries
    future: Future[int] = field(default_factory=Future)


@dataclass
class WriterStats:
    """Counters served on /api/v1/status and read by the benchmark."""

    points_committed: int = 0
    batches_committed: int = 0
    commits: int = 0
    series_created: int = 0
    rejected_busy: int = 0
    rejected_unavailable: int = 0  # refused while the disk failed writes
    failed_batches: int = 0
    disk_failures: int = 0
    last_commit_seconds: float = 0.0
    late_points: int = 0  # committed for minutes already rolled up (storage/late_points.py)


class Writer:
    """Owns ``con`` from its own thread; other threads only call ``submit`` and ``close``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, known: set[int],
                 max_pending_points: int = 2_000_000,
                 old_points: OldPointCheck | None = None,
                 recovery: Recovery | None = None,
                 horizon: late_points.Horizon | None = None) -> None:
        self._con = con
        self.old_points = old_points
        # Without a recovery (embedded mode), a failed write fails only its batch.
        self._recovery = recovery
        self._failure: DiskFailure | None = None
        # Shared with the roll-up pass (``Maintenance``) so late points are marked.
        self.horizon = horizon if horizon is not None else late_points.Horizon.load(con)
        self.known = known
        self._tails = sum_chain.Tails.load(con)
        self.max_pending_points = max_pending_points
        self.stats = WriterStats()
        self._queue: list[_Pending] = []
        # Series whose rows travel in a queued batch: later batches need not carry them.
        self._queued_rows: set[int] = set()
        self._columns: dict[str, list[str]] = {}
        self._pending_points = 0
        self._incoming = 0  # requests being decoded, whose batches will be submitted
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="otel-hms-writer", daemon=True)
        self._thread.start()

    @property
    def pending_points(self) -> int:
        return self._pending_points

    @property
    def unavailable(self) -> str | None:
        """Why no export can be stored now (the disk fails writes), or None."""
        failure = self._failure
        return failure.reason if failure is not None else None

    def store_failed(self, exc: BaseException) -> None:
        """Another user of the store (the roll-ups) saw ``exc``: if the disk failed, stop
        taking writes until it takes them again."""
        failure = disk_failure(exc)
        if failure is not None and self._recovery is not None:
            self._fail_all(failure, [])

    def submit(self, batch: DecodedBatch) -> Future[int]:
        """Queue a batch; the future resolves to its point count once committed.

        Points the store would not keep (``old_points``) are taken out here and reported
        on ``batch`` (``DecodedBatch.refuse``), for the reply.
        """
        tables = batch.prepared
        if tables is None:
            tables = {}
            for kind in {*batch.columns, *batch.tables}:
                table = points_table(kind, batch.columns.get(kind, {}),
                                     batch.tables.get(kind, ()))
                if table is not None:
                    tables[kind] = table
        if self.old_points is not None:
            tables = self.old_points.apply(batch, tables)
        pending = _Pending(tables, None, batch.accepted)
        with self._cond:
            if self._closing:
                raise WriterClosed("the server is shutting down")
            if self._failure is not None:
                self.stats.rejected_unavailable += 1
                raise StoreUnavailable(self._failure.reason)
            if self._queue and self._pending_points + pending.points > self.max_pending_points:
                self.stats.rejected_busy += 1
                raise StoreBusy(f"write queue full ({self._pending_points} points pending)")
            # While the first points of new series arrive, every request carries their rows
            # until they commit; one queued copy is enough (see ``_check_needs``).
            rows = []
            for sid, row in batch.series.items():
                if sid in self.known:
                    continue
                if sid in self._queued_rows:
                    pending.needs.add(sid)
                else:
                    rows.append(row)
            if rows:
                pending.series = series_table(rows)
                pending.carries = [row.series_id for row in rows]
                self._queued_rows.update(pending.carries)
            self._queue.append(pending)
            self._pending_points += pending.points
            self._cond.notify()
        return pending.future

    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Around decoding a request (before its ``submit``): a small group waits for it."""
        with self._cond:
            self._incoming += 1
        try:
            yield
        finally:
            with self._cond:
                self._incoming -= 1
                self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking writes, commit what is queued, and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take_group(self) -> list[_Pending] | None:
        """The next group to commit; empty while the disk fails (``_recover``)."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                if self._failure is not None:
                    return []
                self._cond.wait()
            deadline = time.monotonic() + _LINGER_S
            while (not self._closing and self._incoming
                   and self._pending_points < _LINGER_POINTS):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            group: list[_Pending] = []
            points = 0
            while self._queue and (not group or points < _GROUP_POINTS):
                item = self._queue.pop(0)
                group.append(item)
                points += item.points
            return group

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            if not group:
                self._recover()
                continue
            started = time.perf_counter()
            try:
                self._write(group)
            except Exception as exc:  # one bad batch must not fail its neighbours
                failure = disk_failure(exc)
                if failure is not None:
                    self._rollback()
                    self._disk_failed(failure, group)
                    continue
                log.warning("group commit of %d batches failed (%s); retrying one by one",
                            len(group), exc)
                self._rollback()
                for item in group:
                    try:
                        self._write([item])
                    except Exception as item_exc:
                        self._rollback()
                        self.stats.failed_batches += 1
                        self._finish([item], item_exc)
                    else:
                        self._finish([item], None)
            else:
                self._finish(group, None)
            self.stats.last_commit_seconds = time.perf_counter() - started

    def _disk_failed(self, failure: DiskFailure, group: list[_Pending]) -> None:
        """The group's commit failed on the disk: it and everything queued fail (their
        senders retry); more writes are refused until ``_recover`` succeeds."""
        self.stats.disk_failures += 1
        self.stats.failed_batches += len(group)
        if self._recovery is None:
            self._finish(group, StoreUnavailable(failure.reason))
            return
        log.error("%s", failure.reason)
        self._fail_all(failure, group)

    def _fail_all(self, failure: DiskFailure, group: list[_Pending]) -> None:
        with self._cond:
            if self._failure is None or failure.invalidated:
                self._failure = failure
            queued, self._queue = self._queue, []
            self._cond.notify_all()
        self._finish(group + queued, StoreUnavailable(failure.reason))

    def _recover(self) -> None:
        """Wait until the disk takes writes again (reopening the database if need be)."""
        assert self._recovery is not None
        while True:
            with self._cond:
                if self._closing:
                    return
                self._cond.wait(self._recovery.interval)
                if self._closing:
                    return
                failure = self._failure
            if failure is None or self._recovery.attempt(failure):
                with self._cond:
                    if self._failure is failure:  # not replaced by a worse one meanwhile
                        self._failure = None
                        return

    def _finish(self, group: list[_Pending], error: BaseException | None) -> None:
        with self._cond:
            self._pending_points -= sum(item.points for item in group)
            for item in group:
                self._queued_rows.difference_update(item.carries)
        for item in group:
            if error is None:
                item.future.set_result(item.points)
            else:
                item.future.set_exception(error)

    def _rollback(self) -> None:
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def _write(self, group: list[_Pending]) -> None:
        by_kind: dict[str, list[pa.Table]] = defaultdict(list)
        series: list[pa.Table] = []
        for item in group:
            for kind, table in item.tables.items():
                by_kind[kind].append(table)
            if item.series is not None:
                series.append(item.series)
        self._check_needs(group)
        con = self._con
        late = 0
        with self.horizon.lock:  # from reading the horizon to COMMIT (late_points.py)
            until = self.horizon.until_ns
            con.execute("BEGIN")
            new_ids = self._insert_series(series)
            tails = None
            for kind, tables in by_kind.items():
                table = pa.concat_tables(tables)
                if kind == "sum":
                    table, tails = self._chain(table)
                self._append(POINT_TABLES[kind], table)
                if kind in late_points.ROLLED_KINDS:
                    late += self._mark_late(table, until)
            con.execute("COMMIT")
        self.known.update(new_ids)
        if tails is not None:
            self._tails.apply(tails)
        points = sum(item.points for item in group)
        self.stats.points_committed += points
        self.stats.batches_committed += len(group)
        self.stats.commits += 1
        self.stats.series_created += len(new_ids)
        self.stats.late_points += late

    def _mark_late(self, table: pa.Table, until: int | None) -> int:
        """Mark the minutes of points before the roll-up horizon; returns how many were."""
        found = late_points.marks(table, until)
        if found is None:
            return 0
        self._con.from_arrow(found[0]).insert_into(late_points.LATE_TABLE)
        return found[1]

    def _chain(self, table: pa.Table) -> tuple[pa.Table, sum_chain.Tails]:
        """Sum points with their stored increases; the chain's tails move after COMMIT."""
        chained = sum_chain.chain(self._tails, table)
        if chained.breaks is not None:
            self._con.from_arrow(chained.breaks).insert_into(sum_chain.BREAKS_TABLE)
        return chained.table, chained.tails

    def _check_needs(self, group: list[_Pending]) -> None:
        """Every series a batch's points need is stored or comes with this group."""
        carried = {sid for item in group for sid in item.carries}
        for item in group:
            lost = [sid for sid in item.needs if sid not in self.known and sid not in carried]
            if lost:
                raise SeriesLost(f"{len(lost)} new series came in a batch that failed; retry")

    def _insert_series(self, tables: list[pa.Table]) -> list[int]:
        if not tables:
            return []
        table = pa.concat_tables(tables)
        ids = table.column("series_id").to_pylist()
        keep, new_ids, seen = [], [], set()
        for i, sid in enumerate(ids):
            if sid not in self.known and sid not in seen:
                seen.add(sid)
                keep.append(i)
                new_ids.append(sid)
        if keep:
            self._insert_rows(table.take(keep))
        return new_ids

    def _insert_rows(self, table: pa.Table) -> None:
        """Insert series rows, each resource and scope's maps and JSON converted once.

        The series of one resource and scope repeat its attribute maps and JSON (often a
        kilobyte); DuckDB converts and checks an Arrow map or JSON value per row, so they go
        in a small table of distinct owners that the INSERT joins back.
        """
        owner_key = pc.binary_join_element_wise(
            table.column("resource_attributes_typed"), table.column("scope_attributes_typed"),
            "\x00")
        codes = pc.dictionary_encode(owner_key).combine_chunks().indices
        code_array = np.asarray(codes.to_numpy(zero_copy_only=False), np.int32)
        _, first = np.unique(code_array, return_index=True)
        owners = table.select(list(_OWNER_COLUMNS)).take(pa.array(first)).append_column(
            "owner_idx", pa.array(np.arange(len(first), dtype=np.int32)))
        rows = table.drop_columns(list(_OWNER_COLUMNS)).append_column(
            "owner_idx", pa.array(code_array))
        con = self._con
        con.register("_otel_hms_rows", rows)
        con.register("_otel_hms_owners", owners)
        try:
            con.execute("INSERT INTO series BY NAME SELECT r.* EXCLUDE (owner_idx), "
                        "o.* EXCLUDE (owner_idx), now() AS first_seen FROM _otel_hms_rows r "
                        "JOIN _otel_hms_owners o USING (owner_idx)")
        finally:
            con.unregister("_otel_hms_rows")
            con.unregister("_otel_hms_owners")

    def _append(self, table_name: str, table: pa.Table) -> None:
        """Insert ``table`` (every column of ``table_name``, in any order).

        A relation's ``insert_into`` costs less per statement than registering a view and
        running an INSERT, and per-statement costs are most of a small insert's.
        """
        order = self._columns.get(table_name)
        if order is None:
            order = self._columns[table_name] = [r[0] for r in self._con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                "ORDER BY column_index", [table_name]).fetchall()]
        self._con.from_arrow(table.select(order)).insert_into(table_name)
