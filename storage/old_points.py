"""Refusing points older than the raw retention, which would be deleted before any roll-up.

A replay, a backfill or the OTLP examples (2018 timestamps) can carry points older than
``retention_raw``.  Stored, the next retention pass would delete them before a roll-up saw
them, and the sender would have been told they were kept.  So the writer refuses them as
they arrive: the sender reads the count and the setting in ``partial_success``, the rest of
the request is stored.  A point exactly ``retention_raw`` old is kept; one a nanosecond
older is not.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .batch import DecodedBatch

REASON = "retention_raw"


@dataclass(frozen=True)
class OldPointCheck:
    """Points older than ``keep`` (the ``retention_raw`` setting, shown as ``shown``) are
    refused; ``clock`` is the current time in Unix nanoseconds."""

    keep: dt.timedelta
    shown: str = "30d"
    clock: Callable[[], int] = time.time_ns

    def apply(self, batch: DecodedBatch, tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
        """``tables`` (points per kind) without the points that are too old; those are
        reported on ``batch`` (``DecodedBatch.refuse``)."""
        cutoff = self.clock() - self.keep // dt.timedelta(microseconds=1) * 1000
        refused = 0
        kept: dict[str, pa.Table] = {}
        for kind, table in tables.items():
            times = table.column("time_unix_nano")
            oldest = pc.min(times).as_py()
            if oldest is None or oldest >= cutoff:  # the usual case: one pass, no copy
                kept[kind] = table
                continue
            young = table.filter(pc.greater_equal(times, cutoff))
            refused += table.num_rows - young.num_rows
            if young.num_rows:
                kept[kind] = young
        if refused:
            what = "1 point" if refused == 1 else f"{refused} points"
            were = "was" if refused == 1 else "were"
            batch.refuse(REASON, refused, f"{what} older than retention_raw ({self.shown}) "
                         f"{were} not stored")
        return kept
