"""Request bodies to ``ExportMetricsServiceRequest``: capped decompression, protobuf, OTLP/JSON.

Decompression stops at the size limit, so a gzip bomb costs at most ``limit`` bytes of memory.
OTLP/JSON differs from protobuf's canonical JSON in one way that matters: trace and span ids
are hex, not base64, so they are rewritten before ``json_format`` sees them.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

import zstandard
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from .errors import InvalidRequest, TooLarge, Unsupported

ENCODINGS = ("gzip", "deflate", "zstd", "identity")


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding``; refuse output larger than ``limit`` bytes.

    Concatenated gzip members and zstd frames are both valid encodings of one body (pigz and
    ``zstd --rsyncable`` write them), so every member is read, not only the first.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip", "deflate"):
            return _inflate(body, encoding, limit)
        if encoding == "zstd":
            return _unzstd(body, limit)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise InvalidRequest(f"cannot decompress {encoding} body: {exc}") from None
    raise Unsupported(f"Content-Encoding {encoding!r} is not supported; use one of "
                      f"{', '.join(ENCODINGS)}")


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    # wbits 47 reads gzip and zlib headers alike; raw deflate is -15.
    wbits = 47 if encoding != "deflate" or body[:1] == b"\x78" else -15
    out: list[bytes] = []
    size, rest = 0, body
    while True:
        inflater = zlib.decompressobj(wbits)
        chunk = inflater.decompress(rest, limit + 1 - size)
        size += len(chunk)
        out.append(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise _too_large(limit, "after decompression")
        if not inflater.eof:
            raise InvalidRequest(f"{encoding} body is truncated")
        rest = inflater.unused_data
        if not rest or wbits != 47 or rest.strip(b"\x00") == b"":
            return b"".join(out)


def _unzstd(body: bytes, limit: int) -> bytes:
    # The stream reader stops at the limit (a bomb costs at most ``limit`` bytes) but says
    # nothing when the last frame is cut short, so the frames are then walked to check each ends.
    reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
    out = reader.read(limit + 1)
    if len(out) > limit:
        raise _too_large(limit, "after decompression")
    rest = body
    while rest:
        frame = zstandard.ZstdDecompressor().decompressobj()
        frame.decompress(rest)
        if not frame.eof:
            raise InvalidRequest("zstd body is truncated")
        rest = frame.unused_data
    return out


def grpc_message(message: bytes, limit: int) -> bytes:
    """A gRPC request message as received with grpc core's decompression off: inflated here
    when it is gzip or deflate (zlib), up to ``limit`` bytes, so that the decode worker does
    it instead of the server process.

    With ``grpc.per_message_decompression`` off grpc core hands up the message bytes as sent
    and keeps ``grpc-encoding`` to itself, so the format is told by its header: a protobuf
    never starts with gzip's 0x1f (wire type 7 does not exist); a zlib header (0x78 and a
    multiple of 31) that does not inflate is taken as the protobuf it may then be.
    """
    head = message[:2]
    if head == b"\x1f\x8b":
        wbits, encoding = 31, "gzip"
    elif len(head) == 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        wbits, encoding = 15, "deflate"
    else:
        return message
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(message, limit + 1)
    except zlib.error as exc:
        if encoding == "deflate":
            return message
        raise InvalidRequest(f"cannot decompress gzip message: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"Decompressed message larger than max (over {limit} bytes); send "
                       "smaller batches or raise max_request_bytes")
    if not inflater.eof:
        if encoding == "deflate":
            return message
        raise InvalidRequest("gzip message is truncated")
    return out


def _too_large(limit: int, where: str) -> TooLarge:
    return TooLarge(f"request is larger than {limit} bytes {where}; send smaller batches "
                    "or raise max_request_bytes")


def parse_protobuf(data: bytes) -> ExportMetricsServiceRequest:
    try:
        return ExportMetricsServiceRequest.FromString(data)
    except DecodeError as exc:
        raise InvalidRequest(f"body is not a valid OTLP ExportMetricsServiceRequest "
                             f"protobuf ({exc})") from None


def parse_json(data: bytes) -> ExportMetricsServiceRequest:
    try:
        doc = json.loads(data)
    except RecursionError:
        raise InvalidRequest("JSON body is nested too deeply to be an OTLP request") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"JSON body is not valid UTF-8 ({exc.reason} at byte "
                             f"{exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                             f"{exc.msg}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("JSON body must be an object with resourceMetrics")
    _hex_ids_to_base64(doc)
    try:
        return json_format.ParseDict(doc, ExportMetricsServiceRequest(),
                                     ignore_unknown_fields=True)
    except RecursionError:
        raise InvalidRequest("JSON body is nested too deeply to be an OTLP request") from None
    except json_format.ParseError as exc:
        raise InvalidRequest(f"JSON is not an OTLP metrics request: {exc}") from None
    except OverflowError as exc:  # 1e999 is infinity to Python's json, no integer field's
        raise InvalidRequest(f"JSON is not an OTLP metrics request: a number is out of its "
                             f"field's range ({exc})") from None


_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram",
                "summary")


def _items(doc: Any, *names: str) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    for name in names:
        value = doc.get(name)
        if isinstance(value, list):
            return value
    return []


def _hex_ids_to_base64(doc: dict[str, Any]) -> None:
    for rm in _items(doc, "resourceMetrics", "resource_metrics"):
        for sm in _items(rm, "scopeMetrics", "scope_metrics"):
            for metric in _items(sm, "metrics"):
                if not isinstance(metric, dict):
                    continue
                for kind in _POINT_KINDS:
                    for dp in _items(metric.get(kind), "dataPoints", "data_points"):
                        for ex in _items(dp, "exemplars"):
                            _rewrite_ids(ex)


def _rewrite_ids(exemplar: Any) -> None:
    if not isinstance(exemplar, dict):
        return
    for key in ("traceId", "trace_id", "spanId", "span_id"):
        value = exemplar.get(key)
        if isinstance(value, str) and value:
            try:
                exemplar[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except (ValueError, binascii.Error):
                raise InvalidRequest(f"exemplar {key} {value!r} is not hex") from None
