"""OTLP AnyValue to the two forms the store keeps: a string for lookups, typed JSON for fidelity.

``Attributes['http.route']`` must work as a plain string lookup, yet an int must stay an int and
bytes must stay bytes.  The typed form is the OTLP/JSON encoding of the value (``{"intValue": 5}``),
which every OpenTelemetry user can read and which round-trips every AnyValue kind.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

JSONValue = Any


def _double_json(x: float) -> float | str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def typed(value: AnyValue) -> dict[str, JSONValue]:
    """The OTLP/JSON form of an AnyValue (ints as JSON numbers, bytes base64)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return {}
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "int_value":
        return {"intValue": value.int_value}
    if kind == "double_value":
        return {"doubleValue": _double_json(value.double_value)}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode("ascii")}
    if kind == "array_value":
        return {"arrayValue": {"values": [typed(v) for v in value.array_value.values]}}
    return {"kvlistValue": {"values": [
        {"key": kv.key, "value": typed(kv.value)} for kv in value.kvlist_value.values
    ]}}


def plain(value: AnyValue) -> JSONValue:
    """A natural JSON value: what arrays and kvlists look like inside the string form."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "double_value":
        return _double_json(value.double_value)
    return getattr(value, kind)


def text(value: AnyValue) -> str:
    """The string form, as the Collector's pcommon ``AsString`` renders it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        d = _double_json(value.double_value)
        return d if isinstance(d, str) else repr(d)
    if kind is None:
        return ""
    p = plain(value)
    return p if isinstance(p, str) else json.dumps(p, separators=(",", ":"), ensure_ascii=False)


class Attributes:
    """One attribute set in both forms; later duplicate keys win, as in the SDKs."""

    __slots__ = ("strings", "typed_json")

    def __init__(self, kvs: Iterable[KeyValue]) -> None:
        strings: dict[str, str] = {}
        typed_map: dict[str, JSONValue] = {}
        for kv in kvs:
            strings[kv.key] = text(kv.value)
            typed_map[kv.key] = typed(kv.value)
        self.strings = sorted(strings.items())
        self.typed_json = json.dumps(typed_map, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False)
