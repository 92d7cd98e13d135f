"""Roll-ups and retention, kept up to date by the server in the background.

Raw points are kept for ``retention_raw`` (the seeds: 30 days); per-series 1-minute and
1-hour roll-ups keep what the SQL helpers need to answer over any range — count, sum, min,
max, last and the counter increase for numbers, the bucket increases for histograms — for
their own retention (the 1-hour ones forever by default).

Each roll-up has a watermark in ``otel_hms_meta`` (``rollup_1m_until``): every bucket before
it is complete.  A pass rolls up closed minutes older than ``delay`` in slices of at most
``SLICE``, each slice one short transaction with its watermark (storage/rollup_steps.py), so
a crash never double-counts and ingest is never held up for long; then it folds the points
that arrived late, for minutes already rolled up, into the roll-ups (storage/late_fold.py).
Deletions go oldest first, an hour per transaction, and never remove raw points that are not
rolled up yet; raw points go in whole hours and never at or after the minute of a late point
not folded in yet, whose recomputation needs its hour's points.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from otel_hms.common.times import floor_time as floor
from otel_hms.common.times import micros

from . import sum_chain
from .late_fold import fold_late_points
from .late_points import LATE_TABLE, Horizon
from .rollup_steps import (
    HOUR,
    MINUTE,
    SLICE,
    roll_up_hours,
    roll_up_minutes,
    set_watermark,
    transaction,
    watermark,
)
from .schema import POINT_TABLES

log = logging.getLogger("otel_hms.rollups")

_POINT_TABLES = tuple(POINT_TABLES.values())


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept; None keeps it forever."""

    raw: dt.timedelta | None = dt.timedelta(days=30)
    minute: dt.timedelta | None = dt.timedelta(days=90)
    hour: dt.timedelta | None = None


@dataclass
class MaintenanceStats:
    passes: int = 0
    last_pass_seconds: float = 0.0
    rows_deleted: int = 0
    late_minutes_folded: int = 0  # (series, minute) marks of late points folded in
    last_error: str | None = None
    watermarks: dict[str, str | None] = field(default_factory=dict)


def _oldest(cur: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> dt.datetime | None:
    found = [cur.execute(f"SELECT min(time) FROM {t}").fetchone() for t in tables]
    times = [r[0] for r in found if r and r[0] is not None]
    return min(times) if times else None


def _next_point(cur: duckdb.DuckDBPyConnection, since: dt.datetime) -> dt.datetime | None:
    found = [cur.execute(f"SELECT min(time) FROM {t} WHERE time >= ?", [since]).fetchone()
             for t in _POINT_TABLES if t != "points_summary"]
    times = [r[0] for r in found if r and r[0] is not None]
    return min(times) if times else None


def _next_minute_rollup(cur: duckdb.DuckDBPyConnection, since: dt.datetime
                        ) -> dt.datetime | None:
    found = [cur.execute(f"SELECT min(time) FROM {t} WHERE time >= ?", [since]).fetchone()
             for t in ("rollup_1m_number", "rollup_1m_histograms")]
    times = [r[0] for r in found if r and r[0] is not None]
    return min(times) if times else None


def _delete_before(cur: duckdb.DuckDBPyConnection, table: str, cutoff: dt.datetime,
                   bound: Callable[[duckdb.DuckDBPyConnection], dt.datetime | None] | None
                   = None) -> int:
    """Delete rows older than ``cutoff``, an hour of data per transaction; never at or
    after what ``bound`` reads inside that transaction (so from the rows it deletes)."""
    deleted = 0
    while True:
        oldest = cur.execute(f"SELECT min(time) FROM {table}").fetchone()
        if not oldest or oldest[0] is None or oldest[0] >= cutoff:
            return deleted
        upto = min(cutoff, floor(oldest[0], HOUR) + HOUR)
        with transaction(cur):
            limit = bound(cur) if bound is not None else None
            held = limit is not None and limit < upto
            if limit is not None and held:
                upto = limit
            row = cur.execute(f"DELETE FROM {table} WHERE time < ?", [upto]).fetchone()
            if table == "points_sum":
                _forget_deleted_baselines(cur, upto)
        deleted += int(row[0]) if row else 0
        if held:
            return deleted


def _oldest_late_hour(cur: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """The hour of the oldest late point not folded in yet: its raw points must stay."""
    row = cur.execute(f"SELECT min(minute) FROM {LATE_TABLE}").fetchone()
    return floor(row[0], HOUR) if row and row[0] is not None else None


def _forget_deleted_baselines(cur: duckdb.DuckDBPyConnection, upto: dt.datetime) -> None:
    """Sum points whose previous point was deleted have no baseline any more, as the window
    over what is left would see it (storage/sum_chain.py); breaks before ``upto`` go."""
    cur.execute("UPDATE points_sum SET prev_time_unix_nano = NULL "
                "WHERE prev_time_unix_nano < epoch_us(?::TIMESTAMPTZ) * 1000", [upto])
    cur.execute(f"DELETE FROM {sum_chain.BREAKS_TABLE} WHERE hi < ?", [upto])


class Maintenance:
    """Runs ``run_once`` every ``interval`` seconds on its own cursor, in its own thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection, retention: Retention,
                 delay: dt.timedelta = dt.timedelta(minutes=2), interval: float = 30.0,
                 on_error: Callable[[duckdb.Error], None] | None = None,
                 horizon: Horizon | None = None) -> None:
        self._con = con
        self.cur = con.cursor()
        self.on_error = on_error  # told of a failed pass (the writer watches for a full disk)
        # The writer's (``Writer.horizon``), so that it marks the points that come late.
        self.horizon = horizon if horizon is not None else Horizon()
        self.retention = retention
        self.delay = delay
        self.interval = interval
        self.stats = MaintenanceStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otel-hms-rollups",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:  # started
            self._thread.join(60)
        self.cur.close()

    def watermarks(self) -> dict[str, dt.datetime | None]:
        """Read on the maintenance thread (cursors are not shared between threads)."""
        return {res: watermark(self.cur, res) for res in ("1m", "1h")}

    def known_watermarks(self) -> dict[str, dt.datetime | None]:
        """The watermarks as of the last pass, for other threads."""
        return {k: dt.datetime.fromisoformat(v) if v else None
                for k, v in self.stats.watermarks.items()}

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                self.run_once(dt.datetime.now(dt.UTC))
                self.stats.last_error = None
            except duckdb.Error as exc:
                self.stats.last_error = str(exc)
                log.warning("roll-up/retention pass failed (will retry): %s", exc)
                if self.on_error is not None:
                    self.on_error(exc)
                self._renew_cursor()
            self.stats.passes += 1
            self.stats.last_pass_seconds = time.perf_counter() - started
            self._wake.wait(self.interval)
            self._wake.clear()

    def _renew_cursor(self) -> None:
        """A fresh cursor for the next pass: the store may have been reopened under this
        one (``storage.connection``)."""
        with contextlib.suppress(duckdb.Error):
            self.cur.close()
        try:
            self.cur = self._con.cursor()
        except Exception as exc:  # still being reopened: the next failed pass tries again
            log.debug("no cursor for the roll-ups yet: %s", exc)

    def run_once(self, now: dt.datetime) -> None:
        """Catch the roll-ups up to ``now - delay``, fold late points in, then apply
        retention."""
        cur = self.cur
        closed = floor(now - self.delay, MINUTE)
        # Before reading any point: from here on the writer marks points before ``closed``.
        self.horizon.advance(micros(closed) * 1000)
        lo = watermark(cur, "1m")
        if lo is None:
            oldest = _oldest(cur, _POINT_TABLES)
            lo = floor(oldest, MINUTE) if oldest else None
        while lo is not None and lo < closed and not self._stop.is_set():
            following = _next_point(cur, lo)
            if following is None or following >= closed:
                with transaction(cur):  # nothing to roll up before ``closed``
                    set_watermark(cur, "1m", closed)
                break
            if following >= lo + SLICE:  # skip a long gap in one step
                lo = floor(following, MINUTE)
            hi = min(closed, lo + SLICE)
            roll_up_minutes(cur, lo, hi)
            lo = hi
        minute_mark = watermark(cur, "1m")
        if minute_mark is not None:
            hour_lo = watermark(cur, "1h")
            if hour_lo is None:
                oldest = _oldest(cur, ("rollup_1m_number", "rollup_1m_histograms"))
                hour_lo = floor(oldest, HOUR) if oldest else floor(minute_mark, HOUR)
            hour_hi = floor(minute_mark, HOUR)
            while hour_lo < hour_hi and not self._stop.is_set():
                following = _next_minute_rollup(cur, hour_lo)
                if following is None or following >= hour_hi:
                    with transaction(cur):  # no minutes to merge before ``hour_hi``
                        set_watermark(cur, "1h", hour_hi)
                    break
                if following >= hour_lo + 24 * HOUR:  # skip a long gap in one step
                    hour_lo = floor(following, HOUR)
                step_hi = min(hour_hi, hour_lo + 24 * HOUR)
                roll_up_hours(cur, hour_lo, step_hi)
                hour_lo = step_hi
        self.stats.late_minutes_folded += fold_late_points(cur, now, self.retention.minute,
                                                           self._stop)
        self._apply_retention(now)
        self.stats.watermarks = {k: v.isoformat() if v else None
                                 for k, v in self.watermarks().items()}

    def _apply_retention(self, now: dt.datetime) -> None:
        r = self.retention
        marks = self.watermarks()
        if r.raw is not None and marks["1m"] is not None:
            # Never drop raw points the minute roll-ups have not taken in yet, nor the hour
            # of a late point still to fold in; whole hours, which a fold may recompute.
            cutoff = floor(min(now - r.raw, marks["1m"]), HOUR)
            for table in _POINT_TABLES:
                self.stats.rows_deleted += _delete_before(self.cur, table, cutoff,
                                                          _oldest_late_hour)
        if r.minute is not None and marks["1h"] is not None:
            cutoff = min(now - r.minute, marks["1h"])
            for table in ("rollup_1m_number", "rollup_1m_histograms"):
                self.stats.rows_deleted += _delete_before(self.cur, table, cutoff)
        if r.hour is not None:
            for table in ("rollup_1h_number", "rollup_1h_histograms"):
                self.stats.rows_deleted += _delete_before(self.cur, table, now - r.hour)

    def status(self) -> dict[str, Any]:
        return {"passes": self.stats.passes,
                "last_pass_seconds": round(self.stats.last_pass_seconds, 3),
                "rows_deleted": self.stats.rows_deleted,
                "late_minutes_folded": self.stats.late_minutes_folded,
                "last_error": self.stats.last_error,
                "watermarks": self.stats.watermarks}
