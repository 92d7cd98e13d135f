"""Histogram data points read from a ``Histogram`` serialization in bulk, by template.

The points of one metric from one SDK look alike: the same fields set, the same number of
buckets (``bucket_counts`` is packed fixed64, ``explicit_bounds`` packed double, so both are
fixed-width), the same flags.  Only the attributes differ in length.  So the first point is
walked field by field to get a ``Template`` — a fixed-size head, the attributes, a fixed-size
tail — and every other point costs Python one slice and one lookup of its attributes.  The
heads and tails of all such points are then read at once with numpy, checked there (every
tag and length byte where the template has it, times in range, bounds increasing), and
become Arrow columns.  Points that do not fit, or whose series is not cached, are returned
for the field-by-field path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .number_points import EXEMPLARS_TYPE
from .series_slots import SeriesSlots
from .wire import varint

_DATA_POINT, _ATTRIBUTE = 0x0A, 0x4A


@dataclass(frozen=True)
class Template:
    """Where each fixed field sits in a point's head and tail; the bytes that must match."""

    head: int  # bytes before the attributes
    tail: int  # bytes after them
    head_fields: tuple[tuple[str, str, int], ...]  # (name, numpy format, offset)
    tail_fields: tuple[tuple[str, str, int], ...]
    head_bytes: tuple[tuple[int, int], ...]  # (offset, byte): tags and length prefixes
    tail_bytes: tuple[tuple[int, int], ...]
    buckets: int
    bounds: int
    flags: int

    def has(self, name: str) -> bool:
        return any(f[0] == name for f in self.head_fields + self.tail_fields)


def template_of(raw: bytes) -> Template | None:
    """The template of one canonical HistogramDataPoint, or None if it has none (exemplars,
    unknown fields, a bucket count that does not fit its bounds)."""
    n = len(raw)
    p = 0
    fields: list[tuple[str, str, int]] = []
    fixed: list[tuple[int, int]] = []
    for tag, name, fmt in ((0x11, "start", "<i8"), (0x19, "time", "<i8"),
                           (0x21, "count", "<u8"), (0x29, "sum", "<f8")):
        if p < n and raw[p] == tag:
            fixed.append((p, tag))
            fields.append((name, fmt, p + 1))
            p += 9
    if not any(f[0] == "time" for f in fields):
        return None
    sizes = {}
    for tag, name, fmt in ((0x32, "bucket_counts", "<u8"), (0x3A, "explicit_bounds", "<f8")):
        sizes[name] = 0
        if p < n and raw[p] == tag:
            length, q = varint(raw, p + 1, n)
            if length % 8:
                return None
            fixed.extend((i, raw[i]) for i in range(p, q))
            sizes[name] = length // 8
            fields.append((name, f"({length // 8},){fmt}", q))
            p = q + length
    buckets, bounds = sizes["bucket_counts"], sizes["explicit_bounds"]
    if buckets and buckets != bounds + 1:
        return None
    head = p
    while p < n and raw[p] == _ATTRIBUTE:
        length, q = varint(raw, p + 1, n)
        p = q + length
    tail = p
    flags = 0
    tail_fields: list[tuple[str, str, int]] = []
    tail_fixed: list[tuple[int, int]] = []
    if p + 1 < n and raw[p] == 0x50 and raw[p + 1] < 0x80:
        flags = raw[p + 1]
        tail_fixed += [(p - tail, 0x50), (p + 1 - tail, flags)]
        p += 2
    for tag, name in ((0x59, "min"), (0x61, "max")):
        if p < n and raw[p] == tag:
            tail_fixed.append((p - tail, tag))
            tail_fields.append((name, "<f8", p + 1 - tail))
            p += 9
    if p != n:
        return None
    return Template(head, n - tail, tuple(fields), tuple(tail_fields), tuple(fixed),
                    tuple(tail_fixed), buckets, bounds, flags)


@functools.lru_cache(maxsize=256)
def _dtype(fields: tuple[tuple[str, str, int], ...], size: int) -> np.dtype[Any]:
    return np.dtype({"names": [f[0] for f in fields], "formats": [f[1] for f in fields],
                     "offsets": [f[2] for f in fields], "itemsize": max(size, 1)})


@dataclass
class HistogramScan:
    """Points of one data message that fit its template, and the (body, end) of the rest."""

    table: SeriesSlots
    template: Template | None = None
    bodies: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    slow: list[tuple[int, int]] = field(default_factory=list)
    stop: int = 0  # where the points end


def scan(buf: bytes, table: SeriesSlots, digest: bytes) -> HistogramScan:
    """Walk the repeated ``data_points`` at the start of a canonical ``Histogram``."""
    out = HistogramScan(table)
    get = table.lookup(digest).get
    bodies, ends, slots, slow = out.bodies, out.ends, out.slots, out.slow
    head = tail = -1
    pos, n = 0, len(buf)
    while pos < n and buf[pos] == _DATA_POINT:
        length, body = varint(buf, pos + 1, n)
        end = pos = body + length
        if head < 0:
            out.template = template_of(buf[body:end])
            if out.template is None:
                head = n  # nothing fits: every point goes the slow way
            else:
                head, tail = out.template.head, out.template.tail
        if length >= head + tail:
            slot = get(buf[body + head:end - tail])
            if slot is not None:
                bodies.append(body)
                ends.append(end)
                slots.append(slot)
                continue
        slow.append((body, end))
    if pos > n:
        raise ValueError("a data point runs past its message")
    out.stop = pos
    return out


def columns(parts: list[tuple[bytes, HistogramScan]]
            ) -> tuple[list[pa.Table], list[tuple[int, bytes]]]:
    """Tables of the fitting points of a request, one per template (without ``time``), and
    the points failing the checks as (index in ``parts``, point bytes)."""
    groups: dict[Template, list[int]] = {}
    for i, (_, found) in enumerate(parts):
        if found.bodies and found.template is not None:
            groups.setdefault(found.template, []).append(i)
    tables, rejected = [], []
    for template, members in groups.items():
        bufs = [parts[i][0] for i in members]
        raw = np.frombuffer(b"".join(bufs), np.uint8)
        bases = np.cumsum([0] + [len(b) for b in bufs[:-1]])
        heads_at = np.concatenate([np.asarray(parts[i][1].bodies, np.intp) + bases[k]
                                   for k, i in enumerate(members)])
        tails_at = np.concatenate([np.asarray(parts[i][1].ends, np.intp) + bases[k]
                                   for k, i in enumerate(members)]) - template.tail
        head_raw = raw[heads_at[:, None] + np.arange(template.head)]
        tail_raw = (raw[tails_at[:, None] + np.arange(template.tail)] if template.tail
                    else np.zeros((len(tails_at), 1), np.uint8))
        ok = np.ones(len(heads_at), np.bool_)
        for offset, byte in template.head_bytes:
            ok &= head_raw[:, offset] == byte
        for offset, byte in template.tail_bytes:
            ok &= tail_raw[:, offset] == byte
        heads = head_raw.view(_dtype(template.head_fields, template.head)).ravel()
        tails = tail_raw.view(_dtype(template.tail_fields, template.tail)).ravel()
        ok &= heads["time"] > 0
        if template.has("start"):
            ok &= heads["start"] >= 0
        if template.bounds:
            bounds = heads["explicit_bounds"].reshape(len(heads), template.bounds)
            ok &= ~np.isnan(bounds).any(axis=1)
            ok &= (bounds[:, 1:] > bounds[:, :-1]).all(axis=1)
        sids = np.concatenate([parts[i][1].table.sids[np.asarray(parts[i][1].slots, np.intp)]
                               for i in members])
        if not ok.all():
            owners = np.concatenate([np.full(len(parts[i][1].bodies), i, np.intp)
                                     for i in members])
            base_of = dict(zip(members, bases.tolist()))
            for k in np.flatnonzero(~ok).tolist():
                i = int(owners[k])
                body = int(heads_at[k]) - base_of[i]
                end = int(tails_at[k]) + template.tail - base_of[i]
                rejected.append((i, parts[i][0][body:end]))
            heads, tails, sids = heads[ok], tails[ok], sids[ok]
        if len(heads):
            tables.append(_table(template, heads, tails, sids))
    return tables, rejected


def _table(template: Template, heads: npt.NDArray[Any], tails: npt.NDArray[Any],
           sids: npt.NDArray[np.uint64]) -> pa.Table:
    n = len(heads)

    def column(rows: npt.NDArray[Any], name: str, dtype: pa.DataType) -> pa.Array:
        return pa.array(rows[name]) if name in (rows.dtype.names or ()) else pa.nulls(n, dtype)

    def lists(name: str, width: int, dtype: pa.DataType) -> pa.Array:
        if not width:
            return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)),
                                            pa.array([], dtype))
        offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
        values = np.ascontiguousarray(heads[name]).reshape(-1)
        return pa.ListArray.from_arrays(offsets, pa.array(values, dtype))

    count = (pa.array(heads["count"]) if template.has("count")
             else pa.array(np.zeros(n, np.uint64)))
    start = (pa.array(heads["start"]) if template.has("start")
             else pa.array(np.zeros(n, np.int64)))
    return pa.Table.from_arrays(
        [pa.array(sids), start, pa.array(heads["time"]), count,
         column(heads, "sum", pa.float64()), column(tails, "min", pa.float64()),
         column(tails, "max", pa.float64()),
         lists("bucket_counts", template.buckets, pa.uint64()),
         lists("explicit_bounds", template.bounds, pa.float64()),
         pa.array(np.full(n, template.flags, np.uint32)), pa.nulls(n, EXEMPLARS_TYPE)],
        names=["series_id", "start_time_unix_nano", "time_unix_nano", "count", "sum", "min",
               "max", "bucket_counts", "explicit_bounds", "flags", "exemplars"])
