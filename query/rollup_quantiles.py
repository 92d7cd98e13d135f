"""Histogram quantiles from the roll-ups in one aggregation pass, interpolated with numpy.

The SQL helper ``histogram_quantile`` unnests every roll-up row's bucket lists and sums them
per group, time bucket and histogram bucket: for a 24-hour p99 by route that is 11 M values
hashed into 345,600 groups, most of the query's time.  ``/api/v1/query`` writes its own SQL,
so it can sum the lists position by position instead (``sum(n[1]), sum(n[2]), …``), one
hash-table update per row and not per bucket, per group, time bucket and bucket layout (the
lists' bounds, told apart by the 64-bit hash each roll-up row carries, ``layout``; two
different layouts of one metric would need the same hash to be merged, and one with fewer
buckets is caught).  Each layout's bounds are then read once
and every layout's buckets are put on one axis ordered as the SQL helper orders them (upper
bound, then lower bound, an unbounded lower bound last), so the cumulative counts, the
bucket holding the quantile and the interpolation are the helper's, value for value: the
same float operations on the same exact integer sums (tests/query/test_rollup_quantiles.py
compares both, bit for bit).  The raw points after the roll-up's watermark are summed per
bucket in SQL (``otel_bucket_partials``, as the helper does) and merged in.

All queries of one answer run in one transaction, so a roll-up pass committing meanwhile
cannot move the watermark between the roll-up part and the raw part.  ``answer`` returns
None where it does not apply (raw source, a NaN or missing bucket bound, a roll-up row
without its layout): the caller then asks the SQL helper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from otel_hms.common.times import micros
from otel_hms.storage.connection import Cursors

from .read_only import time_limited
from .spec import QuerySpec

# Bucket positions summed by the first try; a metric with more buckets is asked again with
# as many as it has (the last width seen is remembered per metric).
FIRST_WIDTH = 16

Bound = float | None
Bucket = tuple[Bound, float]  # (lower, upper]; lower None is unbounded

_SERIES_ARGS = "?, group_by := ?::VARCHAR[]"
_RANGE_ARGS = "?, ?::INTERVAL, until := ?::TIMESTAMPTZ, source := ?::VARCHAR"


class RollupQuantiles:
    """Answers quantile queries served by a roll-up; one per query service."""

    def __init__(self, con: Cursors, timeout: float) -> None:
        self.con = con
        self.timeout = timeout
        self.widths: dict[str, int] = {}

    def answer(self, spec: QuerySpec, source: str,
               extra: dict[int, dict[str, str]] | None = None
               ) -> list[dict[str, Any]] | None:
        """The ``series`` of the answer (as ``service.shape`` builds them), or None."""
        q = spec.quantile
        if q is None or source not in ("1m", "1h"):
            return None
        cur = self.con.cursor()
        try:
            with time_limited(cur, self.timeout):
                cur.begin()
                try:
                    return self._answer(cur, spec, source, q, extra or {})
                finally:
                    cur.rollback()
        finally:
            cur.close()

    def _answer(self, cur: duckdb.DuckDBPyConnection, spec: QuerySpec, source: str, q: float,
                extra: dict[int, dict[str, str]]) -> list[dict[str, Any]] | None:
        grid = _Grid(spec)
        series = self._series_args(spec)
        width = self.widths.get(spec.metric, FIRST_WIDTH)
        rolled = self._rolled(cur, spec, source, series, grid, width)
        widest = int(np.max(rolled["width"], initial=0)) if rolled is not None else 0
        if widest:
            self.widths[spec.metric] = widest
        if widest > width:
            rolled = self._rolled(cur, spec, source, series, grid, widest)
        if rolled is None:
            return None
        layouts = self._layouts(cur, source, rolled)
        tail = self._tail(cur, spec, source, series, grid)
        buckets = {b for layout in layouts.values() for b in layout}
        buckets.update((lo, up) for _, _, lo, up, _ in tail)
        axis = _axis(buckets)
        if axis is None:
            return None
        cells = _Cells(grid, rolled, tail, len(axis))
        index = {b: i for i, b in enumerate(axis)}
        for layout_id, layout in layouts.items():
            rows = rolled["layout"] == layout_id
            sums = rolled["sums"][rows, :len(layout)]
            if np.isnan(sums).any():  # two layouts under one hash
                return None
            cells.add(rows, np.array([index[b] for b in layout], dtype=np.int64), sums)
        cells.add_tail([index[(lo, up)] for _, _, lo, up, _ in tail],
                       [n for *_, n in tail])
        key, value = cells.quantile(q, axis)
        labels = self._labels(cur, spec, series)
        return _shape(key, value, grid, labels, extra)

    @staticmethod
    def _series_args(spec: QuerySpec) -> tuple[str, list[Any]]:
        args: list[Any] = [spec.metric, list(spec.by) if spec.by else None]
        if not spec.where:
            return _SERIES_ARGS, args
        return (_SERIES_ARGS + ", match := MAP(?::VARCHAR[], ?::VARCHAR[])",
                [*args, list(spec.where), list(spec.where.values())])

    def _rolled(self, cur: duckdb.DuckDBPyConnection, spec: QuerySpec, source: str,
                series: tuple[str, list[Any]], grid: _Grid, width: int
                ) -> dict[str, Any] | None:
        """Roll-up rows summed per group, time bucket and layout: one row per cell and layout.

        None if a row has no layout (only rows written before schema version 3 could).
        """
        # The rows otel_bucket_rollups reads; the group join alone picks the metric's series.
        sums = ", ".join(f"sum(r.n[{i}]) AS n{i}" for i in range(1, width + 1))
        table = cur.sql(f"""
            SELECT g.GroupId AS gid, (epoch_us(r.time) - ?) // ? AS ti,
                   r.layout, max(len(r.n)) AS width,
                   arg_min(r.series_id, r.time) AS sid, min(r.time) AS t, {sums}
            FROM rollup_{source}_histograms r
            JOIN otel_series_groups({series[0]}) g USING (series_id)
            WHERE r.time >= ? AND r.time < least(?, otel_rollup_until(?))
            GROUP BY ALL
        """, params=[grid.since_us, grid.step_us, *series[1], spec.start, spec.end,
                     source]).to_arrow_table()
        if table.column("layout").null_count:
            return None
        columns = [table.column(f"n{i}").to_numpy() for i in range(1, width + 1)]
        return {
            "gid": table.column("gid").to_numpy(), "ti": table.column("ti").to_numpy(),
            "layout": table.column("layout").to_numpy(),
            "width": table.column("width").to_numpy(),
            "sid": table.column("sid"), "t": table.column("t"),
            "sums": (np.stack(columns, axis=1).astype(np.float64) if columns
                     else np.zeros((table.num_rows, 0))),
        }

    @staticmethod
    def _layouts(cur: duckdb.DuckDBPyConnection, source: str,
                 rolled: dict[str, Any]) -> dict[int, list[Bucket]]:
        """Each layout's buckets, read from one roll-up row that has it."""
        ids, at = np.unique(rolled["layout"], return_index=True)
        if not len(ids):
            return {}
        first = {layout_id: (rolled["sid"][i].as_py(), rolled["t"][i].as_py())
                 for layout_id, i in zip(ids.tolist(), at.tolist())}
        rows = cur.execute(f"""
            SELECT r.series_id, r.time, r.lower, r.upper
            FROM rollup_{source}_histograms r
            SEMI JOIN (SELECT unnest(?::UBIGINT[]) AS series_id,
                              unnest(?::TIMESTAMPTZ[]) AS time) k USING (series_id, time)
            WHERE r.time >= ? AND r.time <= ?
        """, [[s for s, _ in first.values()], [t for _, t in first.values()],
              min(t for _, t in first.values()), max(t for _, t in first.values())]).fetchall()
        bounds = {(sid, t): list(zip(lo, up)) for sid, t, lo, up in rows}
        return {layout_id: bounds[row] for layout_id, row in first.items()}

    @staticmethod
    def _tail(cur: duckdb.DuckDBPyConnection, spec: QuerySpec, source: str,
              series: tuple[str, list[Any]], grid: _Grid
              ) -> list[tuple[int, int, Bound, float, float]]:
        """Raw points after the roll-up's watermark, summed per group, time and bucket."""
        row = cur.execute("SELECT otel_rollup_until(?) < ?::TIMESTAMPTZ",
                          [source, spec.end]).fetchone()
        if not row or not row[0]:
            return []
        return cur.execute(f"""
            SELECT g.GroupId, (epoch_us(p.time) - ?) // ? AS ti, p.lower, p.upper, sum(p.n)
            FROM otel_bucket_partials({_RANGE_ARGS}, step := ?::INTERVAL) p
            JOIN otel_series_groups({series[0]}) g USING (series_id)
            WHERE p.n IS NOT NULL
            GROUP BY ALL
        """, [grid.since_us, grid.step_us, spec.metric, spec.period, spec.end, source,
              spec.step, *series[1]]).fetchall()

    @staticmethod
    def _labels(cur: duckdb.DuckDBPyConnection, spec: QuerySpec,
                series: tuple[str, list[Any]]) -> dict[int, tuple[list[str], list[str], Any]]:
        rows = cur.execute(f"""
            SELECT GroupId, map_keys(Labels), map_values(Labels), SeriesId
            FROM otel_group_labels({series[0]})
        """, series[1]).fetchall()
        return {gid: (keys, values, sid) for gid, keys, values, sid in rows}


class _Grid:
    """The answer's time buckets: origin at the range start, ``count`` steps."""

    def __init__(self, spec: QuerySpec) -> None:
        self.since_us = micros(spec.end) - micros(spec.period)
        self.step_us = micros(spec.step)
        self.count = -(-micros(spec.period) // self.step_us)


def _axis(buckets: set[Bucket]) -> list[Bucket] | None:
    """The buckets in the SQL helper's order, or None when a bound is NaN or missing."""
    for lo, up in buckets:
        if up is None or math.isnan(up) or (lo is not None and math.isnan(lo)):
            return None
    return sorted(buckets, key=lambda b: (b[1], b[0] is None, b[0] or 0.0))


class _Cells:
    """Observations per cell (group and time bucket) and bucket of the axis."""

    def __init__(self, grid: _Grid, rolled: dict[str, Any],
                 tail: Sequence[tuple[int, int, Bound, float, float]], width: int) -> None:
        rolled_keys = rolled["gid"].astype(np.int64) * grid.count + rolled["ti"]
        tail_keys = np.array([g * grid.count + t for g, t, *_ in tail], dtype=np.int64)
        self.keys, inverse = np.unique(np.concatenate([rolled_keys, tail_keys]),
                                       return_inverse=True)
        self.rolled_cell = inverse[:len(rolled_keys)]
        self.tail_cell = inverse[len(rolled_keys):]
        self.n = np.zeros((len(self.keys), width))
        self.present = np.zeros((len(self.keys), width), dtype=bool)

    def add(self, rows: npt.NDArray[np.bool_], columns: npt.NDArray[np.int64],
            sums: npt.NDArray[np.float64]) -> None:
        at = (self.rolled_cell[rows][:, None], columns[None, :])
        np.add.at(self.n, at, sums)
        self.present[at] = True

    def add_tail(self, columns: list[int], n: list[float]) -> None:
        at = (self.tail_cell, np.array(columns, dtype=np.int64))
        np.add.at(self.n, at, np.array(n, dtype=np.float64))
        self.present[at] = True

    def quantile(self, q: float, axis: list[Bucket]
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Cells that have a quantile and its value, as ``histogram_quantile`` computes it."""
        if not axis:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cum = np.cumsum(self.n, axis=1)
        total = cum[:, -1]
        rank = q * total
        holds = self.present & (cum >= rank[:, None])
        found = holds.any(axis=1) & (total > 0)
        cell = np.flatnonzero(found)
        at = holds[cell].argmax(axis=1)
        n = self.n[cell, at]
        below = cum[cell, at] - n
        rank = rank[cell]
        lower = np.array([np.nan if lo is None else lo for lo, _ in axis])[at]
        unbounded = np.array([lo is None for lo, _ in axis])[at]
        upper = np.array([up for _, up in axis])[at]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            low = np.where(unbounded, 0.0, lower)
            share = np.divide(rank - below, n, out=np.zeros_like(n), where=n != 0)
            value = low + (upper - low) * share
            value = np.where(unbounded & (upper <= 0), upper, value)
            value = np.where(np.isinf(upper), lower, value)
        if q < 0:
            value = np.full_like(value, -math.inf)
        elif q > 1:
            value = np.full_like(value, math.inf)
        return self.keys[cell], value


def _shape(key: npt.NDArray[np.int64], value: npt.NDArray[np.float64], grid: _Grid,
           labels: dict[int, tuple[list[str], list[str], Any]],
           extra: dict[int, dict[str, str]]) -> list[dict[str, Any]]:
    """Cells to ``[{labels, points}]``, sorted as ``service.shape`` sorts them."""
    gid = key // grid.count
    t_ms = ((grid.since_us + (key % grid.count) * grid.step_us) // 1000).tolist()
    finite = np.isfinite(value)
    values: list[float | None] = np.where(finite, value, 0.0).tolist()
    for i in np.flatnonzero(~finite).tolist():
        values[i] = None
    starts = np.flatnonzero(np.diff(gid, prepend=-1)).tolist()
    out: list[dict[str, Any]] = []
    for a, b in zip(starts, [*starts[1:], len(t_ms)]):
        keys, label_values, sid = labels[int(gid[a])]
        own = dict(zip(keys, label_values))
        own.update(extra.get(sid, {}))
        out.append({"labels": dict(sorted(own.items())),
                    "points": [[t, v] for t, v in zip(t_ms[a:b], values[a:b])]})
    out.sort(key=lambda e: tuple(e["labels"].items()))
    return out
