"""Small builders of OTLP requests for tests that need exact, hand-made points."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def gauge_request(name: str, points: list[tuple[dict[str, str], int, float]],
                  service: str = "test-svc") -> ExportMetricsServiceRequest:
    """One gauge metric; each point is (attributes, time_unix_nano, value)."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", service))
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = name
    for attrs, t, value in points:
        dp = metric.gauge.data_points.add()
        dp.attributes.extend(kv(k, v) for k, v in attrs.items())
        dp.time_unix_nano = t
        dp.as_double = value
    return request


def sum_point(metric: metrics_pb2.Metric, attrs: dict[str, str], start: int, t: int,
              value: int) -> None:
    dp = metric.sum.data_points.add()
    dp.attributes.extend(kv(k, v) for k, v in attrs.items())
    dp.start_time_unix_nano = start
    dp.time_unix_nano = t
    dp.as_int = value
