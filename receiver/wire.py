"""A strict walk over an ``ExportMetricsServiceRequest``'s bytes down to each metric's points.

Parsing a request with upb and serializing every metric's data again costs more than the
rest of the hot path, so the request levels above the points (a few hundred fields per
request) are walked here and the points region of each metric is handed on as bytes.

The walk accepts only what it fully understands: known fields with their wire types, each
singular field once, points first in their data message.  Anything else raises
``NotPlain`` and the caller parses the request with upb instead, so an unusual but valid
request is decoded exactly as before and an invalid one gets upb's error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

LEN, VARINT = 2, 0
KINDS = {5: "gauge", 7: "sum", 9: "histogram", 10: "exponential_histogram", 11: "summary"}


class NotPlain(Exception):
    """The request is not in the plain form this walk reads; parse it with upb."""


def fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or payload start, payload end) for LEN and VARINT
    fields of ``buf[start:end]``; any other wire type or a cut field raises ``NotPlain``."""
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        value, pos = varint(buf, pos, end)
        if wire == VARINT:
            yield number, wire, value, pos
        elif wire == LEN:
            if pos + value > end:
                raise NotPlain("field runs past its message")
            yield number, wire, pos, pos + value
            pos += value
        else:
            raise NotPlain(f"wire type {wire} at this level")


def varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` (before ``end``): its value and the offset after it."""
    value = shift = 0
    while pos < end and shift < 64:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise NotPlain("cut or overlong varint")


def text(buf: bytes, start: int, end: int) -> str:
    try:
        return buf[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise NotPlain("invalid UTF-8") from None


@dataclass(frozen=True)
class MetricBytes:
    """One metric's header fields and its data message (gauge, sum or histogram) as bytes."""

    name: str
    description: str
    unit: str
    kind: str
    data: bytes


def _singular(seen: set[int], number: int) -> None:
    if number in seen:
        raise NotPlain(f"field {number} repeated")
    seen.add(number)


def resource_metrics(buf: bytes) -> Iterator[tuple[int, int]]:
    for number, wire, start, end in fields(buf, 0, len(buf)):
        if number != 1 or wire != LEN:
            raise NotPlain("unknown request field")
        yield start, end


def resource_parts(buf: bytes, start: int, end: int
                   ) -> tuple[bytes, str, list[tuple[int, int]]]:
    """(resource bytes, schema_url, scope_metrics ranges) of one ResourceMetrics."""
    resource, schema, scopes, seen = b"", "", [], set[int]()
    for number, wire, a, b in fields(buf, start, end):
        if wire != LEN or number not in (1, 2, 3):
            raise NotPlain("unknown ResourceMetrics field")
        if number == 2:
            scopes.append((a, b))
            continue
        _singular(seen, number)
        if number == 1:
            resource = buf[a:b]
        else:
            schema = text(buf, a, b)
    return resource, schema, scopes


def scope_parts(buf: bytes, start: int, end: int) -> tuple[bytes, str, list[tuple[int, int]]]:
    """(scope bytes, schema_url, metric ranges) of one ScopeMetrics."""
    return resource_parts(buf, start, end)  # same shape: 1 message, 2 repeated, 3 schema_url


def metric(buf: bytes, start: int, end: int) -> MetricBytes | None:
    """A gauge, sum or histogram without metadata; None for any other metric (exponential
    histograms, summaries, metadata, no data) which the caller parses with upb."""
    strings = {1: "", 2: "", 3: ""}
    seen: set[int] = set()
    data: tuple[int, int, int] | None = None
    for number, wire, a, b in fields(buf, start, end):
        if wire != LEN:
            raise NotPlain("unknown Metric field")
        if number in strings:
            _singular(seen, number)
            strings[number] = text(buf, a, b)
        elif number in KINDS:
            if data is not None:
                return None  # two data fields: upb's oneof rule decides
            data = (number, a, b)
        elif number == 12:
            return None
        else:
            raise NotPlain("unknown Metric field")
    if data is None or KINDS[data[0]] not in ("gauge", "sum", "histogram"):
        return None
    return MetricBytes(strings[1], strings[2], strings[3], KINDS[data[0]],
                       buf[data[1]:data[2]])


def data_tail(data: bytes, start: int, kind: str) -> tuple[int | None, bool | None]:
    """Temporality and monotonicity from the fields after the points (which end at
    ``start``): what a canonical Gauge, Sum or Histogram has there."""
    temporality = None if kind == "gauge" else 0
    monotonic = False if kind == "sum" else None
    seen: set[int] = set()
    for number, wire, a, _ in fields(data, start, len(data)):
        if number == 2 and wire == VARINT and kind != "gauge":
            _singular(seen, number)
            if a >= 1 << 31:
                raise NotPlain("enum value past int32")
            temporality = a
        elif number == 3 and wire == VARINT and kind == "sum":
            _singular(seen, number)
            monotonic = a != 0
        else:
            raise NotPlain("points not first in their data message, or an unknown field")
    return temporality, monotonic
