"""Durations as people write them (``15s``, ``5m``, ``1h30m``, ``250ms``, ``3d``, ``2w``).

One grammar for every place a duration is written: rules files, settings, the query API's
``range`` and ``step``, dashboards, export bounds and the CLI's flags.  Each caller words
its own error (the field and the fix); this module only says whether the text is one.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_seconds(text: object) -> float:
    """Seconds in ``text``; a bare number is seconds.  ValueError names the accepted forms."""
    if isinstance(text, bool):
        raise ValueError
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError
        return float(text)
    if not isinstance(text, str) or not text.strip():
        raise ValueError
    s = text.strip()
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise ValueError
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total


def format_duration(seconds: float) -> str:
    """The shortest rule-file form of ``seconds`` (``90`` → ``1m30s``)."""
    if seconds == 0:
        return "0s"
    out, rest = "", seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            n = int(rest // size)
            out += f"{n}{unit}"
            rest -= n * size
    if rest:
        out += f"{rest:g}s"
    return out
