"""Number data points read from a ``Gauge``/``Sum`` serialization a metric at a time.

A serialized NumberDataPoint of a known series is [start_time][time][value][attributes]
[flags] in field order: fixed-width fields first, then bytes equal to those of an earlier
point of the same series.  So the per-point Python work is: read the length, cut the tail,
look it up (``SeriesSlots``).  Times and values of all such points are then read at once
with numpy from the fixed 18- or 27-byte heads, checked there (tags, times in range), and
become Arrow columns without a Python object per value.  Every point that is not of this
shape, or whose series is not cached yet, is returned for the field-by-field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .series_slots import SeriesSlots
from .wire import varint

_TIME, _START, _DOUBLE, _INT = 0x19, 0x11, 0x21, 0x31
# Heads of a point without / with start_time_unix_nano: tag + fixed64 per field.
_HEAD = np.dtype({"names": ["time_tag", "time", "value_tag", "value"],
                  "formats": ["u1", "<i8", "u1", "<i8"], "offsets": [0, 1, 9, 10],
                  "itemsize": 18})
_START_HEAD = np.dtype({"names": ["start_tag", "start", "time_tag", "time", "value_tag",
                                  "value"],
                        "formats": ["u1", "<i8", "u1", "<i8", "u1", "<i8"],
                        "offsets": [0, 1, 9, 10, 18, 19], "itemsize": 27})
_ARANGE = {18: np.arange(18), 27: np.arange(27)}
EXEMPLARS_TYPE = pa.list_(pa.struct([
    ("filtered_attributes", pa.string()), ("time_unix_nano", pa.int64()),
    ("value", pa.float64()), ("value_int", pa.int64()), ("span_id", pa.string()),
    ("trace_id", pa.string()),
]))


@dataclass
class NumberScan:
    """Where the points of one data message are: fast ones by head shape, the rest by range.

    ``table`` is the slot table the slots were read from (the decoder may replace its table
    while a request is being decoded).
    """

    table: SeriesSlots
    plain: list[int] = field(default_factory=list)  # body offsets of points without start
    plain_slots: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)  # ... with start_time_unix_nano
    started_slots: list[int] = field(default_factory=list)
    slow: list[tuple[int, int]] = field(default_factory=list)  # (body, end) of the others
    stop: int = 0  # where the points end


def scan(buf: bytes, table: SeriesSlots, digest: bytes) -> NumberScan:
    """Walk the repeated ``data_points`` (field 1) at the start of ``buf``.

    ``buf`` is a canonical serialization (upb writes fields in number order), so the points
    come first and the walk stops at the first other field.
    """
    out = NumberScan(table)
    get = table.lookup(digest).get
    # Bound methods and literal tags (0x0a data point, 0x19 time, 0x11 start): this loop
    # runs once per point.
    add_plain, add_plain_slot = out.plain.append, out.plain_slots.append
    add_started, add_started_slot = out.started.append, out.started_slots.append
    slow = out.slow.append
    pos, n = 0, len(buf)
    while pos < n and buf[pos] == 0x0A:
        length = buf[pos + 1]
        body = pos + 2
        if length >= 0x80:  # most points are 128..16383 bytes: a two-byte length
            second = buf[body]
            if second < 0x80:
                length = (length & 0x7F) | (second << 7)
                body += 1
            else:
                length, body = varint(buf, pos + 1, n)
        pos = body + length
        if length >= 18:
            head = buf[body]
            if head == 0x19:
                slot = get(buf[body + 18:pos])
                if slot is not None:
                    add_plain(body)
                    add_plain_slot(slot)
                    continue
            elif head == 0x11 and length >= 27:
                slot = get(buf[body + 27:pos])
                if slot is not None:
                    add_started(body)
                    add_started_slot(slot)
                    continue
        slow((body, pos))
    if pos > n:
        raise ValueError("a data point runs past its message")
    out.stop = pos
    return out


def _end_of(buf: bytes, body: int) -> int:
    """Where the point whose body starts at ``body`` ends, from its length prefix.

    The prefix's last byte is below 0x80, every other one above, and the tag (0x0a) before
    them is below: so it is found walking back from ``body``.
    """
    start = body - 1
    while buf[start - 1] >= 0x80:
        start -= 1
    length, after = varint(buf, start, body)
    assert after == body
    return body + length


def columns(parts: list[tuple[bytes, NumberScan]]) -> tuple[pa.Table | None,
                                                           list[tuple[int, bytes]]]:
    """The fast points of a request's data messages as one table (without ``time``).

    Also returns the points whose heads fail the checks (another tag where a fixed field
    belongs, a time of 0 or past int64), as (index in ``parts``, point bytes).
    """
    bufs = [buf for buf, _ in parts]
    raw = np.frombuffer(b"".join(bufs), np.uint8)
    bases = np.cumsum([0] + [len(b) for b in bufs[:-1]])
    rejected: list[tuple[int, bytes]] = []
    pieces = []
    for width, dtype in ((18, _HEAD), (27, _START_HEAD)):
        offsets, owners, sids, flags = [], [], [], []
        for i, (_, found) in enumerate(parts):
            bodies, slots = ((found.plain, found.plain_slots) if width == 18
                             else (found.started, found.started_slots))
            if not bodies:
                continue
            offsets.append(np.asarray(bodies, np.intp) + bases[i])
            owners.append(np.full(len(bodies), i, np.intp))
            slot_arr = np.asarray(slots, np.intp)
            sids.append(found.table.sids[slot_arr])
            flags.append(found.table.flags[slot_arr])
        if not offsets:
            continue
        at = np.concatenate(offsets)
        heads = raw[at[:, None] + _ARANGE[width]].view(dtype).ravel()
        ok = (heads["time_tag"] == _TIME) & (heads["time"] > 0) & (
            (heads["value_tag"] == _DOUBLE) | (heads["value_tag"] == _INT))
        if width == 27:
            ok &= heads["start"] >= 0
        piece = (heads, np.concatenate(sids), np.concatenate(flags), width == 27)
        if not ok.all():
            owner = np.concatenate(owners)
            for k in np.flatnonzero(~ok).tolist():
                i = int(owner[k])
                body = int(at[k] - bases[i])
                rejected.append((i, parts[i][0][body:_end_of(parts[i][0], body)]))
            piece = (heads[ok], piece[1][ok], piece[2][ok], piece[3])
        pieces.append(piece)
    if not pieces:
        return None, rejected
    cat = np.concatenate
    times = cat([h["time"] for h, _, _, _ in pieces])
    starts = cat([h["start"] if has_start else np.zeros(len(h), np.int64)
                  for h, _, _, has_start in pieces])
    values = cat([h["value"] for h, _, _, _ in pieces])
    is_double = cat([h["value_tag"] == _DOUBLE for h, _, _, _ in pieces])
    table = _table(cat([p[1] for p in pieces]), cat([p[2] for p in pieces]), starts, times,
                   values, is_double)
    return table, rejected


def _table(sids: npt.NDArray[np.uint64], flags: npt.NDArray[np.uint32],
           starts: npt.NDArray[np.int64], times: npt.NDArray[np.int64],
           values: npt.NDArray[np.int64], is_double: npt.NDArray[np.bool_]) -> pa.Table:
    n = len(sids)
    if is_double.all():
        doubles = pa.array(values.view(np.float64))
        ints = pa.nulls(n, pa.int64())
    elif not is_double.any():
        doubles = pa.nulls(n, pa.float64())
        ints = pa.array(values)
    else:
        doubles = pa.array(values.view(np.float64), mask=~is_double)
        ints = pa.array(values, mask=is_double)
    return pa.Table.from_arrays(
        [pa.array(sids), pa.array(starts), pa.array(times), doubles, ints, pa.array(flags),
         pa.nulls(n, EXEMPLARS_TYPE)],
        names=["series_id", "start_time_unix_nano", "time_unix_nano", "value", "value_int",
               "flags", "exemplars"])
