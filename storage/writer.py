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

The cardinality guard (``series_limits``) is applied here, at commit time: new series past
``max_series`` or ``max_series_per_metric`` are not stored and neither are their points; the
batch reports them (``DecodedBatch.refuse``, under the limit's name, for
``partial_success``) and lists them in ``refused_series``.  Which series are stored is
remembered in a bounded ``RecentIds``; when it has dropped some, new-looking series are
checked against the ``series`` table.
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

from . import late_points, sum_chain
from .arrow_batches import points_table, series_table
from .batch import DecodedBatch
from .disk_failure import DiskFailure, Recovery, StoreUnavailable, disk_failure
from .old_points import OldPointCheck
from .recent_ids import RecentIds
from .schema import POINT_TABLES
from .series_limits import SeriesLimits, limit_of

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
# Series refused lately, so a batch that counted on a refused batch's row is refused too
# (limits only tighten while the server runs); forgetting one costs that batch a retry.
_REFUSED_KEPT = 100_000


class StoreBusy(Exception):
    """The write queue is full; the sender should retry later."""


class WriterClosed(Exception):
    """The server is shutting down and takes no more writes."""


class SeriesLost(Exception):
    """A batch's series rows were in an earlier batch that failed; the sender retries."""


@dataclass(frozen=True)
class _Refusal:
    """Points of one metric's new series refused for one reason, in one batch."""

    reason: str
    metric: str
    points: int
    series: int


@dataclass
class _Pending:
    batch: DecodedBatch
    tables: dict[str, pa.Table]
    series: pa.Table | None
    points: int
    # ids of the series rows in ``series``, with their metric names
    carries: dict[int, str] = field(default_factory=dict)
    needs: dict[int, str] = field(default_factory=dict)  # rows an earlier batch carries
    future: Future[int] = field(default_factory=Future)
    # Set by each attempt to write the batch, applied to ``batch`` once it commits.
    refused: dict[int, str] = field(default_factory=dict)  # series id -> reason
    rejections: list[_Refusal] = field(default_factory=list)
    stored: int = 0


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

    def __init__(self, con: duckdb.DuckDBPyConnection,
                 known: RecentIds | set[int] | None = None,
                 max_pending_points: int = 2_000_000,
                 old_points: OldPointCheck | None = None,
                 recovery: Recovery | None = None,
                 horizon: late_points.Horizon | None = None,
                 limits: SeriesLimits | None = None,
                 series_cache_size: int = 1_000_000) -> None:
        """``known``: every stored series id (None: read from the store, at most
        ``series_cache_size`` of them); ``limits``: none when not given."""
        self._con = con
        self.old_points = old_points
        # Without a recovery (embedded mode), a failed write fails only its batch.
        self._recovery = recovery
        self._failure: DiskFailure | None = None
        # Shared with the roll-up pass (``Maintenance``) so late points are marked.
        self.horizon = horizon if horizon is not None else late_points.Horizon.load(con)
        if known is None:
            known = _load_known(con, series_cache_size)
        self.known = known if isinstance(known, RecentIds) else RecentIds(series_cache_size,
                                                                           known)
        self.limits = limits if limits is not None else SeriesLimits.load(con)
        self._refused: dict[int, str] = {}
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
        pending = _Pending(batch, tables, None, batch.accepted)
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
                    pending.needs[sid] = row.metric_name
                else:
                    rows.append(row)
            if rows:
                pending.series = series_table(rows)
                pending.carries = {row.series_id: row.metric_name for row in rows}
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
                self._report_refusals(item)
                item.future.set_result(item.stored)
            else:
                item.future.set_exception(error)

    def _report_refusals(self, item: _Pending) -> None:
        """A committed batch's refused points go into its ``partial_success`` (one message
        per limit) and the counters."""
        batch = item.batch
        by_reason: dict[str, list[int]] = {}
        for refusal in item.rejections:
            totals = by_reason.setdefault(refusal.reason, [0, 0])
            totals[0] += refusal.points
            totals[1] += refusal.series
            self.limits.refused(refusal.points, refusal.series, refusal.metric)
        for reason, (points, series) in by_reason.items():
            batch.refuse(limit_of(reason), points, f"{points} point{'s' * (points != 1)} of "
                         f"{series} new series refused: {reason}")
        batch.refused_series.update(item.refused)

    def _rollback(self) -> None:
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def _write(self, group: list[_Pending]) -> None:
        self._check_needs(group)
        new_series = self._new_series(group)
        refused = self.limits.admit(new_series.items())
        by_kind: dict[str, list[pa.Table]] = defaultdict(list)
        series: list[pa.Table] = []
        for item in group:
            for kind, table in self._refuse_points(item, refused).items():
                if table.num_rows:
                    by_kind[kind].append(table)
            if item.series is not None:
                series.append(item.series)
        con = self._con
        late = 0
        with self.horizon.lock:  # from reading the horizon to COMMIT (late_points.py)
            until = self.horizon.until_ns
            con.execute("BEGIN")
            new_ids = self._insert_series(series, new_series.keys() - refused.keys())
            tails = None
            for kind, parts in by_kind.items():
                table = pa.concat_tables(parts)
                if kind == "sum":
                    table, tails = self._chain(table)
                self._append(POINT_TABLES[kind], table)
                if kind in late_points.ROLLED_KINDS:
                    late += self._mark_late(table, until)
            con.execute("COMMIT")
        self.known.update(new_ids)
        self.limits.count(new_series[sid] for sid in new_ids)
        if len(self._refused) + len(refused) > _REFUSED_KEPT:
            self._refused = {}
        self._refused.update(refused)
        if tails is not None:
            self._tails.apply(tails)
        points = sum(item.stored for item in group)
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
        """Every series a batch's points need is stored, comes with this group or was
        refused (and is refused again)."""
        carried = {sid for item in group for sid in item.carries}
        for item in group:
            lost = [sid for sid in item.needs if sid not in self.known and sid not in carried
                    and sid not in self._refused]
            if lost:
                raise SeriesLost(f"{len(lost)} new series came in a batch that failed; retry")

    def _new_series(self, group: list[_Pending]) -> dict[int, str]:
        """The series whose rows the group carries and the store does not have, in order,
        with their metric names."""
        new: dict[int, str] = {}
        for item in group:
            for sid, metric in item.carries.items():
                if sid not in self.known:
                    new.setdefault(sid, metric)
        if new and not self.known.complete:
            for sid in self._stored_among(list(new)):
                self.known.add(sid)
                del new[sid]
        return new

    def _stored_among(self, ids: list[int]) -> list[int]:
        """Those of ``ids`` the ``series`` table holds (the known ids are not all cached)."""
        con = self._con
        con.register("_otel_hms_ids", pa.table({"series_id": pa.array(ids, pa.uint64())}))
        try:
            rows = con.execute("SELECT DISTINCT series_id FROM series WHERE series_id IN "
                               "(SELECT series_id FROM _otel_hms_ids)").fetchall()
        finally:
            con.unregister("_otel_hms_ids")
        return [r[0] for r in rows]

    def _refuse_points(self, item: _Pending, refused: dict[int, str]) -> dict[str, pa.Table]:
        """The item's point tables without the points of refused series (counted in
        ``item.rejections`` by reason and metric)."""
        item.refused = {}
        for sid, _ in (*item.carries.items(), *item.needs.items()):
            reason = refused.get(sid) or self._refused.get(sid)
            if reason is not None:
                item.refused[sid] = reason
        item.rejections = []
        item.stored = item.points
        if not item.refused:
            return item.tables
        metric_of = {**item.needs, **item.carries}
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for sid, reason in item.refused.items():
            groups[reason, metric_of[sid]].append(sid)
        dropped = {kind: pa.array(np.zeros(t.num_rows, np.bool_))
                   for kind, t in item.tables.items()}
        for (reason, metric), sids in groups.items():
            value_set = pa.array(sids, pa.uint64())
            points = 0
            for kind, table in item.tables.items():
                mask = pc.is_in(table.column("series_id"), value_set=value_set)
                points += pc.sum(mask).as_py() or 0
                dropped[kind] = pc.or_(dropped[kind], mask)
            item.rejections.append(_Refusal(reason, metric, points, len(sids)))
            item.stored -= points
        return {kind: table.filter(pc.invert(dropped[kind]))
                for kind, table in item.tables.items()}

    def _insert_series(self, tables: list[pa.Table], admitted: set[int]) -> list[int]:
        """Insert the rows of the ``admitted`` series (once each); returns their ids."""
        if not tables or not admitted:
            return []
        table = pa.concat_tables(tables)
        ids = table.column("series_id").to_pylist()
        keep, new_ids, seen = [], [], set()
        for i, sid in enumerate(ids):
            if sid in admitted and sid not in seen:
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


def _load_known(con: duckdb.DuckDBPyConnection, capacity: int) -> RecentIds:
    """The stored series ids, the newest first, as many as the cache keeps without
    dropping any; ``complete`` when that is all of them."""
    keep = max(1, capacity // 2 - 1)
    rows = con.execute("SELECT series_id FROM series ORDER BY first_seen DESC LIMIT ?",
                       [keep + 1]).fetchall()
    return RecentIds(capacity, (r[0] for r in rows[:keep]), complete=len(rows) <= keep)
