"""``otel_hms.configure``: a service's metrics set up in one line, with the stock exporters.

It builds the SDK's ``MeterProvider`` with a ``PeriodicExportingMetricReader`` and the stock
OTLP exporter (gRPC or HTTP/protobuf), or the in-process ``DuckDBMetricExporter``, installs it
as the global provider and returns a ``Meter``.  Everything not given as an argument is left
to the SDK, so the standard ``OTEL_*`` variables work exactly as the SDK documents them
(``OTEL_EXPORTER_OTLP[_METRICS]_ENDPOINT``, ``_PROTOCOL``, ``_HEADERS``, ``_COMPRESSION``,
``_TIMEOUT``, ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``,
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), and an
argument, when given, wins over its variable.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from opentelemetry import metrics
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from otel_hms.sdk.embedded import DuckDBMetricExporter


class ConfigureError(ValueError):
    """An argument or ``OTEL_*`` variable ``configure`` cannot use; the message says which."""


_PROTOCOLS = {"grpc": "grpc", "http": "http", "http/protobuf": "http"}
_DELTA, _CUMULATIVE = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
# The specification's temporality preferences, as the stock OTLP exporters apply them.
TEMPORALITY: dict[str, dict[type, AggregationTemporality]] = {
    "cumulative": dict.fromkeys((Counter, UpDownCounter, Histogram, ObservableCounter,
                                 ObservableUpDownCounter, ObservableGauge), _CUMULATIVE),
    "delta": {Counter: _DELTA, UpDownCounter: _CUMULATIVE, Histogram: _DELTA,
              ObservableCounter: _DELTA, ObservableUpDownCounter: _CUMULATIVE,
              ObservableGauge: _CUMULATIVE},
    "lowmemory": {Counter: _DELTA, UpDownCounter: _CUMULATIVE, Histogram: _DELTA,
                  ObservableCounter: _CUMULATIVE, ObservableUpDownCounter: _CUMULATIVE,
                  ObservableGauge: _CUMULATIVE},
}


def resolve_protocol(protocol: str | None) -> str:
    """``grpc`` or ``http``: the argument, else the standard variables, else ``grpc`` (the
    Python SDK's default)."""
    source = "protocol"
    if protocol is None:
        for name in ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            if os.environ.get(name, "").strip():
                protocol, source = os.environ[name].strip(), name
                break
        else:
            return "grpc"
    if protocol == "http/json":
        raise ConfigureError(f"{source}: 'http/json' has no exporter in the Python SDK; use "
                             "'grpc' or 'http/protobuf' (otel-hms accepts both)")
    if protocol not in _PROTOCOLS:
        raise ConfigureError(f"{source}: expected grpc, http or http/protobuf (got {protocol!r})")
    return _PROTOCOLS[protocol]


def endpoint_url(endpoint: str, protocol: str) -> str:
    """An explicit endpoint as the exporter wants it: ``HOST:PORT`` means plain ``http://``;
    for HTTP a URL without a path gets ``/v1/metrics`` (as ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigureError(f"endpoint: expected HOST:PORT or http(s)://HOST:PORT "
                             f"(got {endpoint!r})")
    if protocol == "http" and parsed.path in ("", "/"):
        url = url.rstrip("/") + "/v1/metrics"
    return url


def temporality_preference(temporality: str | None) -> dict[type, AggregationTemporality] | None:
    """The explicit preference, or None to let the exporter read the variable."""
    if temporality is None:
        return None
    if temporality.lower() not in TEMPORALITY:
        raise ConfigureError(f"temporality: expected cumulative, delta or lowmemory "
                             f"(got {temporality!r})")
    return TEMPORALITY[temporality.lower()]


def make_exporter(endpoint: str | None = None, protocol: str | None = None,
                  headers: Mapping[str, str] | None = None, temporality: str | None = None,
                  embedded: str | os.PathLike[str] | None = None) -> MetricExporter:
    """The stock OTLP exporter for ``protocol``, or the embedded one for a store file."""
    preferred = temporality_preference(temporality)
    if embedded is not None:
        if endpoint is not None or protocol is not None or headers is not None:
            raise ConfigureError("embedded: writes to a file in this process; give it or "
                                 "endpoint/protocol/headers, not both")
        return DuckDBMetricExporter(embedded, preferred_temporality=preferred)
    proto = resolve_protocol(protocol)
    url = endpoint_url(endpoint, proto) if endpoint is not None else None
    # gRPC metadata keys must be lower case; HTTP header names are case-insensitive.
    given_headers = {k.lower(): v for k, v in headers.items()} if headers is not None else None
    if proto == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )
        return GrpcExporter(endpoint=url, headers=given_headers,
                            preferred_temporality=preferred)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpExporter,
    )
    return HttpExporter(endpoint=url, headers=given_headers, preferred_temporality=preferred)


def meter_provider(service_name: str | None = None, *, endpoint: str | None = None,
                   protocol: str | None = None, interval: float | None = None,
                   resource_attributes: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None, temporality: str | None = None,
                   embedded: str | os.PathLike[str] | None = None,
                   views: Sequence[View] = ()) -> MeterProvider:
    """A MeterProvider as ``configure`` builds it, without installing it globally (for a
    process that reports as several services, like ``otel-hms demo``)."""
    return _build(service_name, endpoint, protocol, interval, resource_attributes, headers,
                  temporality, embedded, views)[0]


def _build(service_name: str | None, endpoint: str | None, protocol: str | None,
           interval: float | None, resource_attributes: Mapping[str, Any] | None,
           headers: Mapping[str, str] | None, temporality: str | None,
           embedded: str | os.PathLike[str] | None, views: Sequence[View]
           ) -> tuple[MeterProvider, MetricExporter, Resource]:
    if interval is not None and not interval > 0:
        raise ConfigureError(f"interval: must be > 0 seconds (got {interval})")
    attributes = dict(resource_attributes or {})
    if service_name is not None:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)
    exporter = make_exporter(endpoint, protocol, headers, temporality, embedded)
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=None if interval is None else interval * 1000)
    provider = MeterProvider(metric_readers=[reader], resource=resource, views=list(views))
    return provider, exporter, resource


@dataclass(frozen=True)
class _Configured:
    arguments: tuple[Any, ...]
    provider: MeterProvider
    embedded: DuckDBMetricExporter | None
    meter_name: str


_lock = threading.Lock()
_configured: _Configured | None = None


def configure(service_name: str | None = None, *, endpoint: str | None = None,
              protocol: str | None = None, interval: float | None = None,
              resource_attributes: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None, temporality: str | None = None,
              embedded: str | os.PathLike[str] | None = None,
              views: Sequence[View] = (), meter_name: str | None = None) -> metrics.Meter:
    """Set up the global MeterProvider once and return a Meter; flushed at exit.

    ``interval`` is in seconds (``OTEL_METRIC_EXPORT_INTERVAL``, in milliseconds, otherwise;
    60 s by default).  Calling it again with the same arguments returns a Meter of the same
    provider; with other arguments it raises ``ConfigureError`` (the OpenTelemetry API lets a
    process set its global provider only once).
    """
    global _configured
    arguments = (service_name, endpoint, protocol, interval,
                 tuple(sorted((resource_attributes or {}).items())),
                 tuple(sorted((headers or {}).items())) if headers is not None else None,
                 temporality, os.fspath(embedded) if embedded is not None else None,
                 tuple(views))
    with _lock:
        if _configured is None:
            provider, exporter, resource = _build(
                service_name, endpoint, protocol, interval, resource_attributes, headers,
                temporality, embedded, views)
            metrics.set_meter_provider(provider)
            if metrics.get_meter_provider() is not provider:
                provider.shutdown()
                raise ConfigureError("configure: a global MeterProvider was already set by "
                                     "other code; call configure() before anything else sets it")
            _configured = _Configured(
                arguments, provider,
                exporter if isinstance(exporter, DuckDBMetricExporter) else None,
                str(resource.attributes.get("service.name", "otel_hms")))
        elif _configured.arguments != arguments:
            raise ConfigureError("configure: already called in this process with other "
                                 "arguments; the global MeterProvider can be set only once")
        return _configured.provider.get_meter(meter_name or _configured.meter_name)


def shutdown() -> None:
    """Export what is recorded and stop the provider ``configure`` set up (what the exit hook
    does; call it from a server's shutdown hook when the process ends by a re-raised signal,
    as uvicorn's does, because exit hooks do not run then)."""
    configured = _configured
    if configured is not None:
        configured.provider.shutdown()


def sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Flush the metrics and query the store of ``configure(embedded=…)``."""
    configured = _configured
    if configured is None or configured.embedded is None:
        raise ConfigureError("sql: needs otel_hms.configure(embedded='FILE.duckdb') first; "
                             "with a server, use `otel-hms sql` or POST /api/v1/sql")
    configured.provider.force_flush()
    return configured.embedded.sql(query, params)


__all__ = ["ConfigureError", "configure", "meter_provider", "shutdown", "sql"]
