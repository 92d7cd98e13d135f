"""Each sum point's increase since its series' previous point, computed as it is written.

Rates and increases over raw points then need no window over the range: a point's stored
``increase`` is what ``otel_sum_increments`` (storage/point_macros.py) computes for it when
the point before it lies in the range or its lookback, and ``prev_time_unix_nano`` says
where that point is.  A series' chain is its points in (time, value, start time) order, the
order of that window; points flagged no-recorded-value and NaN values are not in it (they
get no increase and do not move it).  The increase is the cumulative rule: the difference
to the previous point, the whole value after a reset (a drop or a new start time), 0 for an
identical copy; the helpers use the value itself for delta sums.

Points that cannot be chained as they arrive (older than the series' last point, or a copy
of its last time with other values) get no increase, and the span of times whose stored
increases they make wrong goes into ``sum_chain_breaks``: the helpers compute the series
whose break touches a query's range (with its lookback) with the window, as before.

The chain's tail per series (the largest point) lives in memory, is read back from
``points_sum`` when the store opens, and moves only after the commit that stored its points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

# Columns the chain adds to ``points_sum``, and the table of spans it could not chain.
COLUMNS = {"increase": "DOUBLE", "prev_time_unix_nano": "BIGINT"}
BREAKS_TABLE = "sum_chain_breaks"
BREAKS_COLUMNS = """
    series_id UBIGINT NOT NULL,
    lo TIMESTAMPTZ NOT NULL,
    hi TIMESTAMPTZ NOT NULL
"""

_TAILS_SQL = """
    SELECT series_id, max(struct_pack(t := time_unix_nano,
                                      v := coalesce(value_int::DOUBLE, value),
                                      s := coalesce(start_time_unix_nano, 0))) AS k
    FROM points_sum
    WHERE flags & 1 = 0 AND NOT isnan(coalesce(value_int::DOUBLE, value))
    GROUP BY series_id ORDER BY series_id
"""
_US_UTC = pa.timestamp("us", tz="UTC")
# numpy's dtypes do not survive its indexing in the type checker: arrays are Any-typed.
_Array = npt.NDArray[Any]
_I64 = _Array
_F64 = _Array
_U64 = _Array


@dataclass
class Tails:
    """Per series (sorted ids), the chain's last point: time, value and start time."""

    sid: _U64
    t: _I64
    v: _F64
    st: _I64

    @classmethod
    def empty(cls) -> Tails:
        return cls(np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.float64),
                   np.empty(0, np.int64))

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Tails:
        """The tails of every stored series' chain (its largest valid point)."""
        table = con.sql(_TAILS_SQL).to_arrow_table()
        if not table.num_rows:
            return cls.empty()
        key = table.column("k").combine_chunks()
        # copies: Arrow's buffers are read-only and ``apply`` writes in place
        return cls(_np(table.column("series_id"), np.uint64).copy(),
                   _np(key.field("t"), np.int64).copy(),
                   _np(key.field("v"), np.float64).copy(), _np(key.field("s"), np.int64).copy())

    def apply(self, new: Tails) -> None:
        """Move the tails of ``new``'s series (once their points are committed)."""
        if not len(new.sid):
            return
        pos = np.searchsorted(self.sid, new.sid)
        found = _found(self.sid, pos, new.sid)
        at = pos[found]
        self.t[at], self.v[at], self.st[at] = new.t[found], new.v[found], new.st[found]
        if found.all():
            return
        add = ~found
        sid = np.concatenate([self.sid, new.sid[add]])
        order = np.argsort(sid, kind="stable")
        self.sid = sid[order]
        self.t = np.concatenate([self.t, new.t[add]])[order]
        self.v = np.concatenate([self.v, new.v[add]])[order]
        self.st = np.concatenate([self.st, new.st[add]])[order]


class Chained(NamedTuple):
    """A sum table with its increases, the spans it breaks, and the tails it moves to."""

    table: pa.Table
    breaks: pa.Table | None
    tails: Tails


def chain(tails: Tails, table: pa.Table) -> Chained:
    """Add ``increase`` and ``prev_time_unix_nano`` to ``table`` (points_sum rows)."""
    n = table.num_rows
    sid = _np(table.column("series_id"), np.uint64)
    t = _np(table.column("time_unix_nano"), np.int64)
    st = _np(pc.fill_null(table.column("start_time_unix_nano"), 0), np.int64)
    vi = table.column("value_int")
    v = _np(pc.fill_null(table.column("value"), np.nan), np.float64)
    if vi.null_count < n:
        has_int = _np(pc.is_valid(vi), np.bool_)
        v = np.where(has_int, _np(pc.fill_null(vi, 0), np.int64).astype(np.float64), v)
    flags = _np(table.column("flags"), np.uint32)
    valid = ((flags & 1) == 0) & ~np.isnan(v)
    rows = np.arange(n) if valid.all() else np.flatnonzero(valid)
    # Series by series in time order: a stable sort by series keeps each one's points in
    # arrival order, which is time order unless points came late or twice.
    order = rows[np.argsort(sid[rows], kind="stable")]
    s_, t_ = sid[order], t[order]
    if len(order) > 1 and ((s_[1:] == s_[:-1]) & (t_[1:] <= t_[:-1])).any():
        order = rows[np.lexsort((st[rows], v[rows], t[rows], sid[rows]))]
        s_, t_ = sid[order], t[order]
    v_, st_ = v[order], st[order]

    # Each series' tail, looked up once per series in the batch.
    first = np.ones(len(s_), np.bool_)
    first[1:] = s_[1:] != s_[:-1]
    starts = np.flatnonzero(first)
    runs = np.diff(np.append(starts, len(s_)))
    pos = np.searchsorted(tails.sid, s_[starts])
    found_s = _found(tails.sid, pos, s_[starts])
    at = np.minimum(pos, max(len(tails.sid) - 1, 0))
    if len(tails.sid):
        tt_s = np.where(found_s, tails.t[at], 0)
        tv_s = np.where(found_s, tails.v[at], 0.0)
        tst_s = np.where(found_s, tails.st[at], 0)
    else:
        tt_s, tv_s, tst_s = (np.zeros(len(starts), np.int64), np.zeros(len(starts)),
                             np.zeros(len(starts), np.int64))
    tt, found = np.repeat(tt_s, runs), np.repeat(found_s, runs)
    late = found & (t_ <= tt)
    if late.any():  # not after the tail, unless an identical copy of it
        tv, tst = np.repeat(tv_s, runs), np.repeat(tst_s, runs)
        late &= (t_ < tt) | (v_ != tv) | (st_ != tst)

    # The chain over the points that extend it: each after the previous one, the first of a
    # series after its tail.
    any_late = bool(late.any())
    keep = ~late
    ks, kt, kv, kst = (s_[keep], t_[keep], v_[keep], st_[keep]) if any_late else (
        s_, t_, v_, st_)
    kfirst = np.ones(len(ks), np.bool_)
    kfirst[1:] = ks[1:] != ks[:-1]
    pt, pv, pst = _shift(kt), _shift(kv), _shift(kst)
    kstarts = np.flatnonzero(kfirst)
    # the kept points' series are a subset of the batch's, in the same order
    series = np.searchsorted(s_[starts], ks[kstarts]) if any_late else np.arange(len(starts))
    pt[kstarts], pv[kstarts], pst[kstarts] = tt_s[series], tv_s[series], tst_s[series]
    has_prev = ~kfirst
    has_prev[kstarts] = found_s[series]
    dup = has_prev & (kt == pt)
    inc = np.where(dup | ((kst == pst) & (kv >= pv)), kv - pv, kv)
    inc = np.where(has_prev, inc, kv)
    inc_null = dup & (kst != pst)

    if any_late or len(order) < n or not (order == np.arange(n)).all():
        kept_rows = order[keep] if any_late else order
        increase = np.zeros(n, np.float64)
        increase_null = np.ones(n, np.bool_)
        prev = np.zeros(n, np.int64)
        prev_null = np.ones(n, np.bool_)
        increase[kept_rows], increase_null[kept_rows] = inc, inc_null
        prev[kept_rows], prev_null[kept_rows] = pt, ~has_prev
    else:
        increase, increase_null, prev, prev_null = inc, inc_null, pt, ~has_prev
    out = table.append_column("increase", pa.array(increase, mask=increase_null)) \
        .append_column("prev_time_unix_nano", pa.array(prev, mask=prev_null))

    # Spans: a late point makes the stored increases from its time to the tail's wrong; a
    # copy of a time with other values is left to the window, which orders the copies.
    odd = dup & ((kv != pv) | (kst != pst))
    breaks = None
    if any_late or odd.any():
        breaks = _breaks(np.concatenate([s_[late], ks[odd]]),
                         np.concatenate([t_[late], kt[odd]]),
                         np.concatenate([tt[late], kt[odd]]))

    # New tails: per series, the larger of the old tail and the batch's largest point.
    last = np.append(starts[1:], len(s_)) - 1
    ls, lt, lv, lst = s_[last], t_[last], v_[last], st_[last]
    larger = ~found_s | (lt > tt_s) | ((lt == tt_s) & (
        (lv > tv_s) | ((lv == tv_s) & (lst > tst_s))))
    return Chained(out, breaks, Tails(ls[larger], lt[larger], lv[larger], lst[larger]))


def _breaks(sid: _U64, lo: _I64, hi: _I64) -> pa.Table:
    """One row per series: the span from its earliest to its latest broken time."""
    order = np.lexsort((lo, sid))
    sid, lo, hi = sid[order], lo[order], hi[order]
    starts = np.flatnonzero(np.concatenate([[True], sid[1:] != sid[:-1]]))
    return pa.table({
        "series_id": pa.array(sid[starts], pa.uint64()),
        "lo": pa.array(np.minimum.reduceat(lo, starts) // 1000).cast(_US_UTC),
        "hi": pa.array(np.maximum.reduceat(hi, starts) // 1000).cast(_US_UTC),
    })


def _shift(a: _Array) -> _Array:
    out = np.empty_like(a)
    if len(a):
        out[1:] = a[:-1]
        out[0] = 0
    return out


def _found(sorted_ids: _U64, pos: _Array, ids: _U64) -> _Array:
    if not len(sorted_ids):
        return np.zeros(len(ids), np.bool_)
    found: _Array = (pos < len(sorted_ids)) & (
        sorted_ids[np.minimum(pos, len(sorted_ids) - 1)] == ids)
    return found


def _np(column: pa.ChunkedArray | pa.Array, dtype: type[np.generic]) -> _Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype)
