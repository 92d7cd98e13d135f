"""Folding late points into the roll-ups: the buckets they touch are recomputed.

The writer marks (series, minute) for points before the roll-up horizon
(storage/late_points.py).  A maintenance pass, after rolling up, takes the marks before the
minute watermark a slice at a time (at most ``SLICE`` from the oldest) and, in one
transaction per slice: recomputes every minute row of the marked series from the oldest
mark to the slice's end from raw points (so the minute of a counter's next point, whose
increase the late point changed, is recomputed too), the hour rows of those series for the
hours already rolled up, and clears the slice's marks.  When a counter's or histogram's
point after its last marked minute lies beyond the slice, it gets a mark of its own for a
later slice.

The minute rows an hour is merged from must all be there: when minute retention may have
taken some (the slice starts within an hour of ``now - retention_1m``), the slice starts at
the whole hour, whose raw points retention has kept (storage/rollups.py deletes raw points
in whole hours and never at or after a mark).  Increases are exact for series that report
at least every ``LOOKBACK`` (1 h), as the regular roll-up's are.
"""

from __future__ import annotations

import datetime as dt
import threading

import duckdb

from otel_hms.common.times import floor_time as floor

from .late_points import LATE_TABLE
from .rollup_steps import (
    HOUR,
    LOOKBACK,
    SLICE,
    insert_hours,
    insert_minutes,
    transaction,
    watermark,
)

_FOLDED = "_otel_hms_folded"  # the slice's marked series (a temporary table)
_ONLY = f"series_id IN (SELECT series_id FROM {_FOLDED})"
_CHAINED = ("points_sum", "points_histogram", "points_exp_histogram")
_US = dt.timedelta(microseconds=1)


def fold_late_points(cur: duckdb.DuckDBPyConnection, now: dt.datetime,
                     minute_retention: dt.timedelta | None,
                     stop: threading.Event | None = None) -> int:
    """Fold every mark before the minute watermark into the roll-ups (until ``stop`` is
    set); returns how many marks were folded."""
    folded = 0
    while stop is None or not stop.is_set():
        until = watermark(cur, "1m")
        if until is None:
            return folded
        row = cur.execute(f"SELECT min(minute) FROM {LATE_TABLE} WHERE minute < ?",
                          [until]).fetchone()
        if not row or row[0] is None:
            return folded
        lo = row[0]
        if minute_retention is not None and floor(lo, HOUR) < now - minute_retention:
            lo = floor(lo, HOUR)  # minute retention may have taken some of the hour's rows
        folded += _fold_slice(cur, lo, min(lo + SLICE, until), until)
    return folded


def _fold_slice(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime,
                until: dt.datetime) -> int:
    """Recompute the roll-ups of the series marked in [lo, hi) and clear those marks."""
    with transaction(cur):
        hours_until = watermark(cur, "1h")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {_FOLDED} AS SELECT DISTINCT series_id "
                    f"FROM {LATE_TABLE} WHERE minute >= $lo AND minute < $hi",
                    {"lo": lo, "hi": hi})
        if hi < until:
            _mark_next_points(cur, lo, hi, until)
        for table in ("rollup_1m_number", "rollup_1m_histograms"):
            cur.execute(f"DELETE FROM {table} WHERE time >= $lo AND time < $hi AND {_ONLY}",
                        {"lo": lo, "hi": hi})
        insert_minutes(cur, lo, hi, _ONLY)
        # the hours already rolled up that hold a recomputed minute
        hours_lo, hours_hi = floor(lo, HOUR), floor(hi + HOUR - _US, HOUR)
        if hours_until is not None and hours_lo < hours_until:
            hours_hi = min(hours_hi, hours_until)
            for table in ("rollup_1h_number", "rollup_1h_histograms"):
                cur.execute(f"DELETE FROM {table} WHERE time >= $lo AND time < $hi AND {_ONLY}",
                            {"lo": hours_lo, "hi": hours_hi})
            insert_hours(cur, hours_lo, hours_hi, _ONLY)
        row = cur.execute(f"DELETE FROM {LATE_TABLE} WHERE minute >= $lo AND minute < $hi",
                          {"lo": lo, "hi": hi}).fetchone()
        cur.execute(f"DROP TABLE {_FOLDED}")
    return int(row[0]) if row else 0


def _mark_next_points(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime,
                      until: dt.datetime) -> None:
    """Mark the minute of the point after each folded counter's and histogram's last marked
    minute in [lo, hi) when it lies at or after ``hi`` (and within ``LOOKBACK``, before
    ``until``): its increase is measured from a late point, and a later slice recomputes it."""
    points = " UNION ALL ".join(
        f"SELECT series_id, time FROM {t} WHERE time >= $lo AND time < $next_hi AND {_ONLY}"
        for t in _CHAINED)
    cur.execute(f"""
        INSERT INTO {LATE_TABLE}
        WITH last AS (
            SELECT series_id, max(minute) + INTERVAL 1 MINUTE AS after FROM {LATE_TABLE}
            WHERE minute >= $lo AND minute < $hi GROUP BY series_id
        ), next AS (
            SELECT p.series_id, min(p.time) AS time
            FROM ({points}) p JOIN last USING (series_id)
            WHERE p.time >= last.after GROUP BY p.series_id
        )
        SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) FROM next WHERE time >= $hi
    """, {"lo": lo, "hi": hi, "next_hi": min(hi + LOOKBACK, until)})
