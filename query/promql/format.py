"""Numbers, times and strings written exactly as Prometheus 2.42's JSON writes them.

Grafana and the compliance tester read values as strings and compare them; Prometheus writes
them with Go's ``strconv`` and ``encoding/json`` rules, which Python's ``repr`` and ``json``
follow only in part (docs/design/prometheus.md §4.3): sample values switch to exponent form
below 1e-6 and from 1e21, scalar values never do, sample timestamps are milliseconds
written as ``seconds.mmm``, and strings escape ``<``, ``>`` and ``&`` as Go does.
"""

from __future__ import annotations

import math
from decimal import Decimal


def _shortest_fixed(v: float) -> str:
    """Go ``FormatFloat(v, 'f', -1, 64)`` for a finite ``v``: shortest digits, no exponent."""
    s = format(Decimal(repr(v)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _special(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def fixed(v: float) -> str:
    """Go ``FormatFloat(v, 'f', -1, 64)``: ``1e-10`` -> ``0.0000000001``, ``-0`` -> ``-0``.

    Scalar results and ``count_values`` labels are written this way."""
    return _special(v) or _shortest_fixed(v)


def sample_value(v: float) -> str:
    """A vector or matrix sample's value (``MarshalValue``): exponent form when
    ``|v| < 1e-6`` or ``|v| >= 1e21`` (``1e-07``, ``1e+21``), else as ``fixed``."""
    special = _special(v)
    if special is not None:
        return special
    if v != 0 and (abs(v) < 1e-6 or abs(v) >= 1e21):
        return repr(v)  # Python's exponent form is Go's 'e' with -1 precision: 1e-07, 1.5e+22
    return _shortest_fixed(v)


def sample_time(ms: int) -> str:
    """A sample's timestamp (``MarshalTimestamp``): whole seconds, then ``.mmm`` unless the
    milliseconds are 0 (``1.500``, ``-1.500``, ``0``)."""
    sign = "-" if ms < 0 else ""
    seconds, fraction = divmod(abs(ms), 1000)
    return f"{sign}{seconds}.{fraction:03d}" if fraction else f"{sign}{seconds}"


def json_float(v: float) -> str:
    """A float64 as Go's ``encoding/json`` writes it (the time of a scalar or string result:
    ``4``, ``1000.123``): shortest digits, exponent form below 1e-6 and from 1e21."""
    if v != 0 and (abs(v) < 1e-6 or abs(v) >= 1e21):
        text = repr(v)
        return text.replace("e-0", "e-") if text[-4:-1] == "e-0" else text  # e-07 -> e-7
    return _shortest_fixed(v)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
            "\u2029": "\\u2029"}


def json_string(s: str) -> str:
    """A JSON string as Go's ``encoding/json`` writes it (HTML-safe, ``\\u00XX`` controls)."""
    out = ['"']
    for ch in s:
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":  # a lone surrogate: Go writes invalid UTF-8 as U+FFFD
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def json_labels(labels: tuple[tuple[str, str], ...]) -> str:
    """A label set (sorted by name) as a JSON object."""
    return "{" + ",".join(f"{json_string(k)}:{json_string(v)}" for k, v in labels) + "}"


__all__ = ["fixed", "json_float", "json_labels", "json_string", "sample_time", "sample_value"]
