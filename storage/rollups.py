"""Roll-ups and retention, kept up to date by the server in the background.

Raw points are kept for ``retention_raw`` (the seeds: 30 days); per-series 1-minute and
1-hour roll-ups keep what the SQL helpers need to answer over any range — count, sum, min,
max, last and the counter increase for numbers, the bucket increases for histograms — for
their own retention (the 1-hour ones forever by default).

Each roll-up has a watermark in ``otel_hms_meta`` (``rollup_1m_until``): every bucket before
it is complete.  A pass rolls up closed minutes older than ``delay`` (late points arriving
after that are kept raw but miss the roll-up) in slices of at most ``SLICE``, each slice one
short transaction with its watermark, so a crash never double-counts and ingest is never
held up for long.  Deletions go oldest first, an hour per transaction, and never remove raw
points that are not rolled up yet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from . import sql_helpers, sum_chain
from .schema import LIST_BUCKETS, POINT_TABLES

log = logging.getLogger("otel_hms.rollups")

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
SLICE = dt.timedelta(hours=6)
# Counter baselines for the first points of a slice are looked for this far back.
LOOKBACK = dt.timedelta(hours=1)
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
    last_error: str | None = None
    watermarks: dict[str, str | None] = field(default_factory=dict)


def _floor(t: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + ((t - epoch) // unit) * unit


def watermark(cur: duckdb.DuckDBPyConnection, resolution: str) -> dt.datetime | None:
    row = cur.execute("SELECT max(value)::TIMESTAMPTZ FROM otel_hms_meta WHERE key = ?",
                      [f"rollup_{resolution}_until"]).fetchone()
    return row[0] if row and row[0] is not None else None


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


@contextlib.contextmanager
def _transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One roll-up step and its watermark commit together or not at all."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


def roll_up_minutes(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime) -> None:
    """Roll raw points in [lo, hi) up to minutes and move the watermark, in one transaction."""
    period = hi - lo
    with _transaction(cur):
        cur.execute("""
            INSERT INTO rollup_1m_number
            WITH nums AS (
                SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) AS time,
                       count(*) AS count, sum(v) AS sum, min(v) AS min, max(v) AS max,
                       arg_max(v, time) AS last, max(time) AS last_time
                FROM otel_number_points(NULL, $lo, $hi)
                GROUP BY ALL
            ), incs AS (
                SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) AS time,
                       sum(delta) AS increase
                FROM otel_sum_increments(NULL, $period, until := $hi, lookback := $lookback)
                WHERE delta IS NOT NULL
                GROUP BY ALL
            )
            SELECT series_id, time, count, sum, min, max, last, last_time, increase
            FROM nums LEFT JOIN incs USING (series_id, time)
        """, {"lo": lo, "hi": hi, "period": period, "lookback": LOOKBACK})
        cur.execute("INSERT INTO rollup_1m_histograms " + LIST_BUCKETS.format(rows="""
            SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) AS time, lower, upper,
                   sum(n) AS n
            FROM otel_bucket_increments(NULL, $period, until := $hi, lookback := $lookback)
            WHERE n IS NOT NULL
            GROUP BY ALL
        """), {"hi": hi, "period": period, "lookback": LOOKBACK})
        _set_watermark(cur, "1m", hi)


def roll_up_hours(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime) -> None:
    """Merge minute roll-ups in [lo, hi) into hours and move the watermark."""
    with _transaction(cur):
        cur.execute("""
            INSERT INTO rollup_1h_number
            SELECT series_id, time_bucket(INTERVAL 1 HOUR, time), sum(count), sum(sum),
                   min(min), max(max), arg_max(last, last_time), max(last_time), sum(increase)
            FROM rollup_1m_number WHERE time >= $lo AND time < $hi
            GROUP BY ALL
        """, {"lo": lo, "hi": hi})
        cur.execute("INSERT INTO rollup_1h_histograms " + LIST_BUCKETS.format(rows="""
            SELECT series_id, time_bucket(INTERVAL 1 HOUR, time) AS time, lower, upper,
                   sum(n) AS n
            FROM (SELECT series_id, time, unnest(lower) AS lower, unnest(upper) AS upper,
                         unnest(n) AS n
                  FROM rollup_1m_histograms WHERE time >= $lo AND time < $hi)
            GROUP BY ALL
        """), {"lo": lo, "hi": hi})
        _set_watermark(cur, "1h", hi)


def _set_watermark(cur: duckdb.DuckDBPyConnection, resolution: str, until: dt.datetime) -> None:
    cur.execute("INSERT OR REPLACE INTO otel_hms_meta VALUES (?, ?)",
                [f"rollup_{resolution}_until", until.astimezone(dt.UTC).isoformat()])
    sql_helpers.install_watermarks(cur)


def _delete_before(cur: duckdb.DuckDBPyConnection, table: str, cutoff: dt.datetime) -> int:
    """Delete rows older than ``cutoff``, an hour of data per transaction."""
    deleted = 0
    while True:
        oldest = cur.execute(f"SELECT min(time) FROM {table}").fetchone()
        if not oldest or oldest[0] is None or oldest[0] >= cutoff:
            return deleted
        upto = min(cutoff, _floor(oldest[0], HOUR) + HOUR)
        with _transaction(cur):
            row = cur.execute(f"DELETE FROM {table} WHERE time < ?", [upto]).fetchone()
            if table == "points_sum":
                _forget_deleted_baselines(cur, upto)
        deleted += int(row[0]) if row else 0


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
                 on_error: Callable[[duckdb.Error], None] | None = None) -> None:
        self._con = con
        self.cur = con.cursor()
        self.on_error = on_error  # told of a failed pass (the writer watches for a full disk)
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
        """Catch the roll-ups up to ``now - delay``, then apply retention."""
        cur = self.cur
        closed = _floor(now - self.delay, MINUTE)
        lo = watermark(cur, "1m")
        if lo is None:
            oldest = _oldest(cur, _POINT_TABLES)
            lo = _floor(oldest, MINUTE) if oldest else None
        while lo is not None and lo < closed and not self._stop.is_set():
            following = _next_point(cur, lo)
            if following is None or following >= closed:
                with _transaction(cur):  # nothing to roll up before ``closed``
                    _set_watermark(cur, "1m", closed)
                break
            if following >= lo + SLICE:  # skip a long gap in one step
                lo = _floor(following, MINUTE)
            hi = min(closed, lo + SLICE)
            roll_up_minutes(cur, lo, hi)
            lo = hi
        minute_mark = watermark(cur, "1m")
        if minute_mark is not None:
            hour_lo = watermark(cur, "1h")
            if hour_lo is None:
                oldest = _oldest(cur, ("rollup_1m_number", "rollup_1m_histograms"))
                hour_lo = _floor(oldest, HOUR) if oldest else _floor(minute_mark, HOUR)
            hour_hi = _floor(minute_mark, HOUR)
            while hour_lo < hour_hi and not self._stop.is_set():
                following = _next_minute_rollup(cur, hour_lo)
                if following is None or following >= hour_hi:
                    with _transaction(cur):  # no minutes to merge before ``hour_hi``
                        _set_watermark(cur, "1h", hour_hi)
                    break
                if following >= hour_lo + 24 * HOUR:  # skip a long gap in one step
                    hour_lo = _floor(following, HOUR)
                step_hi = min(hour_hi, hour_lo + 24 * HOUR)
                roll_up_hours(cur, hour_lo, step_hi)
                hour_lo = step_hi
        self._apply_retention(now)
        self.stats.watermarks = {k: v.isoformat() if v else None
                                 for k, v in self.watermarks().items()}

    def _apply_retention(self, now: dt.datetime) -> None:
        r = self.retention
        marks = self.watermarks()
        if r.raw is not None and marks["1m"] is not None:
            # Never drop raw points the minute roll-ups have not taken in yet.
            cutoff = min(now - r.raw, marks["1m"])
            for table in _POINT_TABLES:
                self.stats.rows_deleted += _delete_before(self.cur, table, cutoff)
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
                "rows_deleted": self.stats.rows_deleted, "last_error": self.stats.last_error,
                "watermarks": self.stats.watermarks}
