"""Compact input series for rule tests, loaded into a real (in-memory) store.

``request.latency{route="/apply", service.name="permits"}`` names a metric and its
attributes (``service.name`` goes to the resource); values are promtool's expanding
notation: ``1 2 3``, ``_`` for a missing sample, ``3x4`` (3 five times), ``1+2x3``
(1 3 5 7), ``10-1x2`` (10 9 8), ``_x3``.  The points go through the real decoder and writer
into the real schema, so rule SQL is tested against exactly what ``serve`` would store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_hms.query import install_helpers
from otel_hms.receiver.decode import Decoder
from otel_hms.storage import schema
from otel_hms.storage.writer import Writer

_SERIES = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.:/-]*)\s*(?:\{(.*)\})?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.:/-]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_TERM = re.compile(r"^(_|-?[0-9.eE+]+?)(?:([+-])([0-9.eE]+))?(?:x(\d+))?$")


@dataclass(frozen=True)
class InputSeries:
    metric: str
    attributes: dict[str, str]
    values: tuple[float | None, ...]
    kind: str = "gauge"  # gauge | sum (cumulative, monotonic)


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``name{k="v", …}`` → (name, attributes); ValueError says what is wrong."""
    m = _SERIES.match(text)
    if not m:
        raise ValueError(f"expected name{{label=\"value\", ...}} (got {text!r})")
    labels: dict[str, str] = {}
    body = (m.group(2) or "").strip()
    pos = 0
    while pos < len(body):
        lm = _LABEL.match(body, pos)
        if not lm:
            raise ValueError(f"cannot read labels at {body[pos:]!r}; write key=\"value\"")
        labels[lm.group(1)] = lm.group(2).encode().decode("unicode_escape")
        pos = lm.end()
    return m.group(1), labels


def expand_values(text: str) -> tuple[float | None, ...]:
    """promtool's ``a+bxn`` notation to one value (or None) per step."""
    out: list[float | None] = []
    for term in str(text).split():
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"cannot read {term!r}; write numbers, _, 3x4 or 1+2x3")
        start, sign, step, times = m.groups()
        n = int(times) if times is not None else 0
        if start == "_":
            out.extend([None] * (n + 1 if times is not None else 1))
            continue
        a = float(start)
        b = float(step) if step else 0.0
        if sign == "-":
            b = -b
        out.extend(a + b * k for k in range(n + 1))
    return tuple(out)


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def to_request(series: Sequence[InputSeries], interval: float,
               origin: float = 0.0) -> ExportMetricsServiceRequest:
    """All series as one OTLP request; sample ``i`` is at ``origin + i × interval``."""
    request = ExportMetricsServiceRequest()
    for s in series:
        rm = request.resource_metrics.add()
        resource = {k: v for k, v in s.attributes.items() if k == "service.name"}
        rm.resource.attributes.extend(_kv(k, v) for k, v in resource.items())
        metric = rm.scope_metrics.add().metrics.add()
        metric.name = s.metric
        if s.kind == "sum":
            metric.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
            metric.sum.is_monotonic = True
            points = metric.sum.data_points
        else:
            points = metric.gauge.data_points
        for i, v in enumerate(s.values):
            if v is None:
                continue
            dp = points.add()
            dp.attributes.extend(_kv(k, a) for k, a in s.attributes.items()
                                 if k != "service.name")
            dp.time_unix_nano = int(round((origin + i * interval) * 1e9))
            if s.kind == "sum":
                dp.start_time_unix_nano = int(round(origin * 1e9))
            dp.as_double = v
    return request


def memory_store(series: Sequence[InputSeries], interval: float,
                 origin: float = 0.0) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory store holding ``series``, written by the real writer."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    con.execute("SET TimeZone = 'UTC'")
    schema.install(con)
    install_helpers(con)
    writer = Writer(con, set())
    try:
        if series:
            batch = Decoder(known=writer.known).decode(to_request(series, interval, origin))
            writer.submit(batch).result(60)
    finally:
        writer.close()
    return con
