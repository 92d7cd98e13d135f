"""Build OTLP metrics by hand for the query tests: every kind, explicit times, both temporalities.

Times are seconds after ``T0`` (2026-01-01T00:00:00Z) so expected answers read like the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

T0_S = 1_767_225_600  # 2026-01-01T00:00:00Z
T0 = T0_S * 1_000_000_000
T0_SQL = "TIMESTAMPTZ '2026-01-01 00:00:00+00'"
DELTA, CUMULATIVE = 1, 2


def at(seconds: float) -> int:
    """Nanoseconds since the epoch, ``seconds`` after T0."""
    return T0 + int(seconds * 1_000_000_000)


def until_sql(seconds: float) -> str:
    return f"{T0_SQL} + INTERVAL {int(seconds * 1000)} MILLISECOND"


def attributes(attrs: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()]


def number_point(attrs: dict[str, str], t: float, value: float, start: float | None = None,
                 flags: int = 0) -> metrics_pb2.NumberDataPoint:
    point = metrics_pb2.NumberDataPoint(attributes=attributes(attrs), time_unix_nano=at(t),
                                        flags=flags)
    if start is not None:
        point.start_time_unix_nano = at(start)
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    return point


def sum_metric(name: str, points: Sequence[metrics_pb2.NumberDataPoint],
               temporality: int = CUMULATIVE, monotonic: bool = True) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, sum=metrics_pb2.Sum(
        data_points=points, aggregation_temporality=temporality, is_monotonic=monotonic))


def gauge_metric(name: str, points: Sequence[metrics_pb2.NumberDataPoint]) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=points))


def histogram_point(attrs: dict[str, str], t: float, bounds: Sequence[float],
                    counts: Sequence[int], start: float | None = -3600.0
                    ) -> metrics_pb2.HistogramDataPoint:
    return metrics_pb2.HistogramDataPoint(
        attributes=attributes(attrs), time_unix_nano=at(t),
        start_time_unix_nano=at(start) if start is not None else 0,
        count=sum(counts), explicit_bounds=bounds, bucket_counts=counts)


def histogram_metric(name: str, points: Sequence[metrics_pb2.HistogramDataPoint],
                     temporality: int = CUMULATIVE) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, histogram=metrics_pb2.Histogram(
        data_points=points, aggregation_temporality=temporality))


def exp_point(attrs: dict[str, str], t: float, scale: int, offset: int, counts: Sequence[int],
              zero_count: int = 0, start: float = -3600.0
              ) -> metrics_pb2.ExponentialHistogramDataPoint:
    return metrics_pb2.ExponentialHistogramDataPoint(
        attributes=attributes(attrs), time_unix_nano=at(t), start_time_unix_nano=at(start),
        scale=scale, zero_count=zero_count, count=sum(counts) + zero_count,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
            offset=offset, bucket_counts=counts))


def exp_metric(name: str, points: Sequence[metrics_pb2.ExponentialHistogramDataPoint],
               temporality: int = CUMULATIVE) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, exponential_histogram=metrics_pb2.ExponentialHistogram(
        data_points=points, aggregation_temporality=temporality))


def request(*metrics: metrics_pb2.Metric, service: str = "svc",
            resource: dict[str, str] | None = None) -> ExportMetricsServiceRequest:
    res = Resource(attributes=attributes({"service.name": service, **(resource or {})}))
    return ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=res, scope_metrics=[metrics_pb2.ScopeMetrics(metrics=list(metrics))])])


def rounded(rows: list[dict[str, Any]], digits: int = 9) -> list[dict[str, Any]]:
    """Rows with floats rounded, so interpolated answers compare exactly."""
    return [{k: round(v, digits) if isinstance(v, float) else v for k, v in row.items()}
            for row in rows]
