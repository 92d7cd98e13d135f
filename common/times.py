"""Time on the UTC epoch: the grid every bucket of the store and the query API lies on.

Roll-up minutes and hours, the query API's roll-up ranges and the export's hour files are
all whole multiples of their width counted from 1970-01-01 UTC.
"""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def floor_time(t: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    """The start of the ``unit`` bucket holding ``t``."""
    return EPOCH + ((t - EPOCH) // unit) * unit


def ceil_time(t: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    """The first ``unit`` boundary at or after ``t``."""
    return EPOCH - ((EPOCH - t) // unit) * unit


def rfc3339_ms(seconds: float) -> str:
    """A unix time as alert payloads and listings print it: RFC 3339, UTC, milliseconds."""
    t = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def micros(t: dt.datetime | dt.timedelta) -> int:
    """Microseconds since the epoch (of a time) or in a span."""
    return (t - EPOCH if isinstance(t, dt.datetime) else t) // MICROSECOND
