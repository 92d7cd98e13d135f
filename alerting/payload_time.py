"""Times as alert payloads and listings print them: RFC 3339, UTC, milliseconds."""

from __future__ import annotations

import datetime as dt


def iso(seconds: float) -> str:
    t = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
