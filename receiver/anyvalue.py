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
from decimal import Decimal
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
    """The string form, as the Collector's pcommon ``AsString`` renders it.

    Doubles use Go's JSON number form (``2``, ``1e-7``, ``100000000000000000000``), arrays and
    kvlists are Go's ``json.Marshal`` of the raw value (sorted keys, HTML characters escaped), so
    a query written against the ClickHouse exporter's tables matches the same strings here.
    NaN and infinities, which Go cannot marshal, are ``NaN``, ``Infinity`` and ``-Infinity``.
    """
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return go_float(value.double_value)
    if kind is None:
        return ""
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return _go_json(plain(value))


def go_float(x: float) -> str:
    """Go's ``encoding/json`` (ES6) rendering of a float64."""
    if math.isnan(x) or math.isinf(x):
        return str(_double_json(x))
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    shortest = repr(x)
    if abs(x) < 1e-6 or abs(x) >= 1e21:
        mantissa, _, exponent = shortest.partition("e")
        power = int(exponent) if exponent else 0
        if not exponent:  # repr chose positional form; rebuild the exponent
            digits = Decimal(shortest).normalize()
            mantissa, _, exponent = f"{digits:e}".partition("e")
            power = int(exponent)
        return f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    positional = f"{Decimal(shortest):f}"
    if "." in positional:
        positional = positional.rstrip("0").rstrip(".")
    return positional


_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _go_json(value: JSONValue) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES)
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    return "{" + ",".join(f"{_go_json(k)}:{_go_json(value[k])}" for k in sorted(value)) + "}"


# KeyValue bytes -> (key, string form, '"key":typed JSON'): a fleet's series share most of
# their attribute values, so each is rendered once.
_KV_CACHE: dict[bytes, tuple[str, str, str]] = {}
_KV_CACHE_LIMIT = 200_000


def _rendered(kv: KeyValue) -> tuple[str, str, str]:
    raw = kv.SerializeToString()
    hit = _KV_CACHE.get(raw)
    if hit is None:
        fragment = json.dumps({kv.key: typed(kv.value)}, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)[1:-1]
        hit = (kv.key, text(kv.value), fragment)
        if len(_KV_CACHE) < _KV_CACHE_LIMIT:
            _KV_CACHE[raw] = hit
    return hit


class Attributes:
    """One attribute set in both forms; later duplicate keys win, as in the SDKs.

    ``typed_json`` is ``json.dumps`` of the key -> typed value map with sorted keys, put
    together from each attribute's rendered fragment (the same bytes).
    """

    __slots__ = ("strings", "typed_json")

    def __init__(self, kvs: Iterable[KeyValue]) -> None:
        strings: dict[str, str] = {}
        fragments: dict[str, str] = {}
        for kv in kvs:
            key, string, fragment = _rendered(kv)
            strings[key] = string
            fragments[key] = fragment
        self.strings = sorted(strings.items())
        self.typed_json = "{" + ",".join(fragments[k] for k in sorted(fragments)) + "}"
