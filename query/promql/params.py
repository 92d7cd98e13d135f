"""The Prometheus HTTP API's times and durations, read as 2.42 reads them.

Errors carry the words Prometheus answers with (``cannot parse "xyz" to a valid timestamp``);
the API face adds the ``invalid parameter "time": `` prefix.  Times are int milliseconds
since the epoch, durations int nanoseconds (Prometheus' ``time.Duration``: the 11,000-points
check divides in nanoseconds).
"""

from __future__ import annotations

import datetime as dt
import math
import re

MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1
# Prometheus' MinTime/MaxTime (the defaults of start/end on the metadata endpoints) and the
# strings it writes them as, which it also accepts back.
MIN_TIME_MS = (MIN_INT64 // 1000 + 1 + 62135596801) * 1000  # Go truncates the division
MAX_TIME_MS = (MAX_INT64 // 1000 - 62135596801) * 1000 + 999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?"
                      r"(Z|[+-]\d{2}:\d{2})")
_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"
                       r"(?:(\d+)ms)?")
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_DIGITS = r"\d+(?:_\d+)*"  # Go accepts underscores between digits
_GO_FLOAT = re.compile(rf"[+-]?(?:(?:{_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})(?:[eE][+-]?\d+)?"
                       r"|inf|infinity|nan)", re.IGNORECASE)


class ParamError(ValueError):
    """A parameter Prometheus would refuse; the message is its wording."""


def go_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)``, or None where Go refuses the text."""
    if _GO_FLOAT.fullmatch(text):
        value = float(text)
        if math.isinf(value) and "inf" not in text.lower():
            return None  # out of range: Go answers an error
        return value
    if re.fullmatch(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+", text):
        try:
            return float.fromhex(text)
        except OverflowError:
            return None
    return None


def _go_round(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from a float of seconds or an RFC 3339 time."""
    value = go_float(text)
    if value is not None and math.isfinite(value):
        seconds = math.trunc(value)
        ms = seconds * 1000 + _go_round((value - seconds) * 1000)
        return max(MIN_TIME_MS, min(MAX_TIME_MS, ms))
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    match = _RFC3339.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            tz = dt.UTC if zone == "Z" else dt.timezone(
                (1 if zone[0] == "+" else -1) * dt.timedelta(hours=int(zone[1:3]),
                                                             minutes=int(zone[4:6])))
            when = dt.datetime(int(year), int(month), int(day), int(hour), int(minute),
                               int(second), tzinfo=tz)
        except ValueError:
            pass
        else:
            ms = int(when.timestamp()) * 1000
            if fraction:
                ms += int((fraction[1:] + "00")[:3])
            return ms
    raise ParamError(f'cannot parse "{text}" to a valid timestamp')


def parse_duration(text: str) -> int:
    """Nanoseconds from a float of seconds or a Prometheus duration (``1h30m``)."""
    value = go_float(text)
    if value is not None:
        ns = value * 1e9
        if math.isnan(ns) or not -(2.0**63) <= ns <= 2.0**63:
            raise ParamError(f'cannot parse "{text}" to a valid duration. It overflows int64')
        return int(ns)
    if text != "" and (text == "0" or (match := _DURATION.fullmatch(text)) is not None):
        if text == "0":
            return 0
        assert match is not None
        ms = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_MS, strict=True) if n)
        if ms * 1_000_000 > MAX_INT64:
            raise ParamError(f'cannot parse "{text}" to a valid duration')
        return ms * 1_000_000
    raise ParamError(f'cannot parse "{text}" to a valid duration')


__all__ = ["MAX_TIME_MS", "MIN_TIME_MS", "ParamError", "go_float", "parse_duration",
           "parse_time"]
