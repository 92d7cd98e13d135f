"""Points that arrive for minutes already rolled up are marked, so the roll-ups take them in.

A point arriving after ``rollup_delay`` (a sender that buffered, a replay) lands in a minute
the roll-ups have passed.  The writer records a mark, (series, minute), in ``LATE_TABLE`` in
the same transaction as the point; the next maintenance pass recomputes the roll-up rows of
the marked series around it and clears the marks (storage/rollups.py, ``fold_late_points``),
and raw retention never deletes raw points at or after a mark.  So roll-ups hold every
acknowledged point, however late it came.

Which points are late is decided against the ``Horizon``: the time below which a roll-up has
run or may be running.  The writer holds its lock from reading it to its COMMIT; a roll-up
pass moves it, under the same lock, to where the pass will roll up to before it reads any
points.  Every point is then either committed before the pass looks (and rolled up by it) or
compared with the moved horizon (and marked): none falls between.
"""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

LATE_TABLE = "rollup_late_points"
LATE_COLUMNS = """
    series_id UBIGINT NOT NULL,
    minute TIMESTAMPTZ NOT NULL
"""
# Summaries are not rolled up: their late points need no mark.
ROLLED_KINDS = ("gauge", "sum", "histogram", "exponential_histogram")
_MINUTE_NS = 60_000_000_000
_US_UTC = pa.timestamp("us", tz="UTC")


class Horizon:
    """Unix nanoseconds below which points are late (None: nothing is rolled up yet)."""

    def __init__(self, until_ns: int | None = None) -> None:
        self.lock = threading.Lock()
        self.until_ns = until_ns

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Horizon:
        """Starting from the store's minute roll-up watermark."""
        (until,), = con.execute("SELECT epoch_ns(max(value)::TIMESTAMPTZ) FROM otel_hms_meta "
                                "WHERE key = 'rollup_1m_until'").fetchall()
        return cls(int(until) if until is not None else None)

    def advance(self, until_ns: int) -> None:
        """Move the horizon forward (never back) before a pass reads points up to it."""
        with self.lock:
            if self.until_ns is None or until_ns > self.until_ns:
                self.until_ns = until_ns


def marks(table: pa.Table, until_ns: int | None) -> tuple[pa.Table, int] | None:
    """The (series_id, minute) marks of ``table``'s points before ``until_ns``, one per
    series and minute, and how many points were late; None when none were (the usual case,
    found in one pass over the times)."""
    if until_ns is None or not table.num_rows:
        return None
    times = table.column("time_unix_nano")
    if pc.min(times).as_py() >= until_ns:
        return None
    late = table.filter(pc.less(times, until_ns))
    minute_us = pc.multiply(pc.divide(late.column("time_unix_nano"), _MINUTE_NS),
                            _MINUTE_NS // 1000)
    found = pa.table({"series_id": late.column("series_id"),
                      "minute": minute_us.cast(_US_UTC)})
    return found.group_by(["series_id", "minute"]).aggregate([]), late.num_rows
