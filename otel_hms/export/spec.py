"""What one Parquet export covers: target directory, time range, kinds and metrics.

Both sides parse it the same way: ``otel-hms export`` checks its flags before it asks anyone,
and the server checks the body of ``POST /api/v1/export`` (which can come from anything).
Times take the query API's forms (``query_spec.parse_time``) plus a bare duration back from
now (``24h``), like ``rules backtest --since``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from otel_hms.query.spec import QueryParamError, parse_duration, parse_time

# Each kind's dataset is its ClickHouse-shaped view (storage/schema.py), row for row.
KINDS: dict[str, str] = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exp_histogram": "otel_metrics_exponential_histogram",
    "summary": "otel_metrics_summary",
}
KINDS_HELP = "gauge, sum, histogram, exp_histogram or summary"
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[a-z]+)+")
TIME_HELP = "a duration back from now (24h, 7d), RFC 3339 (2026-12-01T00:00:00Z) or unix seconds"


class ExportError(Exception):
    """An export cannot run or failed; the message names the problem and the fix."""


class ExportBusy(ExportError):
    """Another export is writing into the same directory (HTTP 409)."""


@dataclass(frozen=True)
class ExportSpec:
    to: str  # absolute path of the dataset's root directory
    since: dt.datetime  # inclusive, UTC
    until: dt.datetime  # exclusive, UTC
    kinds: tuple[str, ...]
    metrics: tuple[str, ...] = ()  # empty: every metric


def parse_bound(text: str, flag: str, now: dt.datetime) -> dt.datetime:
    """``24h`` (back from ``now``), ``now``, ``now-1h``, RFC 3339 or unix seconds, in UTC."""
    text = text.strip()
    try:
        if _DURATION.fullmatch(text):
            bound: dt.datetime = now - parse_duration(text, flag)
        else:
            bound = parse_time(text, flag, now).astimezone(dt.UTC)
    except (QueryParamError, OverflowError, ValueError, OSError):
        raise ExportError(f"{flag}: {text!r} is not a time; use {TIME_HELP}") from None
    return bound


def parse_names(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated and comma-separated values, in order, without blanks or repeats."""
    names: list[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            if name and name not in names:
                names.append(name)
    return tuple(names)


def parse_kinds(values: Iterable[str]) -> tuple[str, ...]:
    # The store's own name for it (otel_series.MetricType) is accepted too.
    kinds = parse_names(v.replace("exponential_histogram", "exp_histogram") for v in values)
    for kind in kinds:
        if kind not in KINDS:
            raise ExportError(f"--kind: unknown kind {kind!r}; use {KINDS_HELP}")
    return kinds or tuple(KINDS)


def make_spec(to: str, since: str, until: str, kinds: Iterable[str] = (),
              metrics: Iterable[str] = (), now: dt.datetime | None = None) -> ExportSpec:
    """Check every argument of an export; the directory itself is checked where it is written."""
    now = now or dt.datetime.now(dt.UTC)
    if not to.strip():
        raise ExportError("--to: give the directory to write the Parquet files into, e.g. "
                          "--to ./parquet")
    start = parse_bound(since, "--since", now)
    end = parse_bound(until, "--until", now)
    if start >= end:
        raise ExportError(f"--since ({start.isoformat()}) must be before --until "
                          f"({end.isoformat()}); swap them or widen the range")
    return ExportSpec(to=os.path.abspath(to), since=start, until=end, kinds=parse_kinds(kinds),
                      metrics=parse_names(metrics))
