"""The roll-up steps: raw points to minute rows, minute rows to hour rows, and watermarks.

One body of SQL per resolution, used both by the regular pass (every series, the minutes
after the watermark; storage/rollups.py) and by the fold of late points (the marked series,
minutes already rolled up; storage/late_points.py), so a bucket recomputed for a late point
holds exactly what it would have held had the point come in time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import duckdb

from . import point_macros
from .schema import LIST_BUCKETS

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
SLICE = dt.timedelta(hours=6)
# Counter baselines for the first points of a slice are looked for this far back.
LOOKBACK = dt.timedelta(hours=1)


def watermark(cur: duckdb.DuckDBPyConnection, resolution: str) -> dt.datetime | None:
    row = cur.execute("SELECT max(value)::TIMESTAMPTZ FROM otel_hms_meta WHERE key = ?",
                      [f"rollup_{resolution}_until"]).fetchone()
    return row[0] if row and row[0] is not None else None


@contextlib.contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One roll-up step and its watermark commit together or not at all."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


def insert_minutes(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime,
                   only: str = "TRUE") -> None:
    """Insert the minute rows of raw points in [lo, hi), of the series ``only`` (a condition
    on ``series_id``) selects."""
    period = hi - lo
    cur.execute(f"""
        INSERT INTO rollup_1m_number
        WITH nums AS (
            SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) AS time,
                   count(*) AS count, sum(v) AS sum, min(v) AS min, max(v) AS max,
                   arg_max(v, time) AS last, max(time) AS last_time
            FROM otel_number_points(NULL, $lo, $hi)
            WHERE {only}
            GROUP BY ALL
        ), incs AS (
            SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) AS time,
                   sum(delta) AS increase
            FROM otel_sum_increments(NULL, $period, until := $hi, lookback := $lookback)
            WHERE delta IS NOT NULL AND {only}
            GROUP BY ALL
        )
        SELECT series_id, time, count, sum, min, max, last, last_time, increase
        FROM nums LEFT JOIN incs USING (series_id, time)
    """, {"lo": lo, "hi": hi, "period": period, "lookback": LOOKBACK})
    cur.execute("INSERT INTO rollup_1m_histograms " + LIST_BUCKETS.format(rows=f"""
        SELECT series_id, time_bucket(INTERVAL 1 MINUTE, time) AS time, lower, upper,
               sum(n) AS n
        FROM otel_bucket_increments(NULL, $period, until := $hi, lookback := $lookback)
        WHERE n IS NOT NULL AND {only}
        GROUP BY ALL
    """), {"hi": hi, "period": period, "lookback": LOOKBACK})


def insert_hours(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime,
                 only: str = "TRUE") -> None:
    """Insert the hour rows merged from the minute rows in [lo, hi) (whole hours), of the
    series ``only`` selects."""
    cur.execute(f"""
        INSERT INTO rollup_1h_number
        SELECT series_id, time_bucket(INTERVAL 1 HOUR, time), sum(count), sum(sum),
               min(min), max(max), arg_max(last, last_time), max(last_time), sum(increase)
        FROM rollup_1m_number WHERE time >= $lo AND time < $hi AND {only}
        GROUP BY ALL
    """, {"lo": lo, "hi": hi})
    cur.execute("INSERT INTO rollup_1h_histograms " + LIST_BUCKETS.format(rows=f"""
        SELECT series_id, time_bucket(INTERVAL 1 HOUR, time) AS time, lower, upper,
               sum(n) AS n
        FROM (SELECT series_id, time, unnest(lower) AS lower, unnest(upper) AS upper,
                     unnest(n) AS n
              FROM rollup_1m_histograms WHERE time >= $lo AND time < $hi AND {only})
        GROUP BY ALL
    """), {"lo": lo, "hi": hi})


def roll_up_minutes(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime) -> None:
    """Roll raw points in [lo, hi) up to minutes and move the watermark, in one transaction."""
    with transaction(cur):
        insert_minutes(cur, lo, hi)
        set_watermark(cur, "1m", hi)


def roll_up_hours(cur: duckdb.DuckDBPyConnection, lo: dt.datetime, hi: dt.datetime) -> None:
    """Merge minute roll-ups in [lo, hi) into hours and move the watermark."""
    with transaction(cur):
        insert_hours(cur, lo, hi)
        set_watermark(cur, "1h", hi)


def set_watermark(cur: duckdb.DuckDBPyConnection, resolution: str, until: dt.datetime) -> None:
    cur.execute("INSERT OR REPLACE INTO otel_hms_meta VALUES (?, ?)",
                [f"rollup_{resolution}_until", until.astimezone(dt.UTC).isoformat()])
    point_macros.install_watermarks(cur)
