"""SQL written for the Collector's ClickHouse exporter runs on the views, with the same answers.

The exporter's README documents its metrics queries (a sum metric by name, then by name and
attribute: the OpenTelemetry demo's ``calls``); its DDL names the tables (the exponential
histogram's is ``otel_metrics_exponential_histogram``) and their Nested columns, read as
``Exemplars.TraceId``.  Both run here against a real ``otel-hms serve`` fed over OTLP/HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from conftest import ServerProcess
from metric_builders import T0_S, at, attributes

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")

# Every column of the exporter's five metric tables (internal/sql_templates/*_table.sql),
# Nested fields as ClickHouse names them, with the DuckDB type the view gives it.
_COMMON = {
    "ResourceAttributes": "MAP(VARCHAR, VARCHAR)", "ResourceSchemaUrl": "VARCHAR",
    "ScopeName": "VARCHAR", "ScopeVersion": "VARCHAR",
    "ScopeAttributes": "MAP(VARCHAR, VARCHAR)", "ScopeDroppedAttrCount": "UINTEGER",
    "ScopeSchemaUrl": "VARCHAR", "ServiceName": "VARCHAR", "MetricName": "VARCHAR",
    "MetricDescription": "VARCHAR", "MetricUnit": "VARCHAR",
    "Attributes": "MAP(VARCHAR, VARCHAR)", "StartTimeUnix": "TIMESTAMP WITH TIME ZONE",
    "TimeUnix": "TIMESTAMP WITH TIME ZONE", "Flags": "UINTEGER",
}
_EXEMPLARS = {
    "Exemplars.FilteredAttributes": "MAP(VARCHAR, VARCHAR)[]",
    "Exemplars.TimeUnix": "TIMESTAMP WITH TIME ZONE[]", "Exemplars.Value": "DOUBLE[]",
    "Exemplars.SpanId": "VARCHAR[]", "Exemplars.TraceId": "VARCHAR[]",
}
_DISTRIBUTION = {"Count": "UBIGINT", "Sum": "DOUBLE", "Min": "DOUBLE", "Max": "DOUBLE",
                 "AggregationTemporality": "INTEGER"}
EXPORTER_COLUMNS: dict[str, dict[str, str]] = {
    "otel_metrics_gauge": {**_COMMON, **_EXEMPLARS, "Value": "DOUBLE"},
    "otel_metrics_sum": {**_COMMON, **_EXEMPLARS, "Value": "DOUBLE",
                         "AggregationTemporality": "INTEGER", "IsMonotonic": "BOOLEAN"},
    "otel_metrics_histogram": {**_COMMON, **_EXEMPLARS, **_DISTRIBUTION,
                               "BucketCounts": "UBIGINT[]", "ExplicitBounds": "DOUBLE[]"},
    "otel_metrics_exponential_histogram": {
        **_COMMON, **_EXEMPLARS, **_DISTRIBUTION, "Scale": "INTEGER", "ZeroCount": "UBIGINT",
        "PositiveOffset": "INTEGER", "PositiveBucketCounts": "UBIGINT[]",
        "NegativeOffset": "INTEGER", "NegativeBucketCounts": "UBIGINT[]"},
    "otel_metrics_summary": {
        **_COMMON, "Count": "UBIGINT", "Sum": "DOUBLE",
        "ValueAtQuantiles.Quantile": "DOUBLE[]", "ValueAtQuantiles.Value": "DOUBLE[]"},
}


def _typed(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _exemplar(t: float, value: float | int, **filtered: AnyValue) -> metrics_pb2.Exemplar:
    exemplar = metrics_pb2.Exemplar(time_unix_nano=at(t), trace_id=TRACE, span_id=SPAN,
                                    filtered_attributes=[_typed(k, v)
                                                         for k, v in filtered.items()])
    if isinstance(value, int):
        exemplar.as_int = value
    else:
        exemplar.as_double = value
    return exemplar


def _calls(service: str, t: float, value: int) -> metrics_pb2.NumberDataPoint:
    return metrics_pb2.NumberDataPoint(
        attributes=attributes({"service_name": service, "span_name": "GET"}),
        start_time_unix_nano=at(-60), time_unix_nano=at(t), as_int=value)


def _request() -> ExportMetricsServiceRequest:
    """The demo's ``calls`` counter, and a metric of each other kind with exemplars."""
    buckets = metrics_pb2.ExponentialHistogramDataPoint.Buckets
    summary_point = metrics_pb2.SummaryDataPoint
    metrics = [
        metrics_pb2.Metric(name="calls", unit="1", sum=metrics_pb2.Sum(
            aggregation_temporality=2, is_monotonic=True, data_points=[
                _calls("featureflagservice", 0, 5), _calls("featureflagservice", 10, 8),
                _calls("frontend", 0, 40)])),
        metrics_pb2.Metric(name="queue_depth", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=at(5), as_double=3.0, exemplars=[
                _exemplar(4, 7, customer=AnyValue(string_value="acme"),
                          retries=AnyValue(int_value=2), sampled=AnyValue(bool_value=True),
                          ratio=AnyValue(double_value=0.25), big=AnyValue(double_value=1e21),
                          tiny=AnyValue(double_value=1e-7), whole=AnyValue(double_value=2.0),
                          raw=AnyValue(bytes_value=b"\x01\xff")),
                metrics_pb2.Exemplar(time_unix_nano=at(4.5), as_double=1.5)])])),
        metrics_pb2.Metric(name="latency", histogram=metrics_pb2.Histogram(
            aggregation_temporality=1, data_points=[metrics_pb2.HistogramDataPoint(
                time_unix_nano=at(5), count=3, sum=2.5, bucket_counts=[1, 2],
                explicit_bounds=[1.0], exemplars=[_exemplar(3, 1.75)])])),
        metrics_pb2.Metric(name="latency_exp", exponential_histogram=(
            metrics_pb2.ExponentialHistogram(aggregation_temporality=1, data_points=[
                metrics_pb2.ExponentialHistogramDataPoint(
                    time_unix_nano=at(5), count=4, sum=9.0, scale=1, zero_count=1,
                    positive=buckets(offset=2, bucket_counts=[1, 2]),
                    exemplars=[_exemplar(2, 2.5, tags=AnyValue(array_value=ArrayValue(
                        values=[AnyValue(string_value="a")])))])]))),
        metrics_pb2.Metric(name="rpc_duration", summary=metrics_pb2.Summary(data_points=[
            summary_point(time_unix_nano=at(5), count=10, sum=12.0, quantile_values=[
                summary_point.ValueAtQuantile(quantile=0.5, value=1.0),
                summary_point.ValueAtQuantile(quantile=0.99, value=4.5)])])),
    ]
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(attributes({"service.name": "otel-demo"}))
    rm.scope_metrics.add().metrics.extend(metrics)
    return request


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: every test only reads."""
    tmp: Path = tmp_path_factory.mktemp("clickhouse")
    server = ServerProcess(tmp / "store.duckdb", [], {}, tmp / "serve.log")
    try:
        server.wait_ready()
        server.export(_request())
        yield server
    finally:
        server.kill()


def _time(seconds: float) -> str:
    return dt.datetime.fromtimestamp(T0_S + seconds, dt.UTC).isoformat()


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The README's queries have no ORDER BY: compare their rows as a multiset."""
    return sorted(rows, key=repr)


def test_readme_find_a_sum_metric_by_name(demo: ServerProcess) -> None:
    rows = demo.sql("select TimeUnix,MetricName,Attributes,Value from otel_metrics_sum\n"
                    "where MetricName='calls' limit 100")
    flag = {"service_name": "featureflagservice", "span_name": "GET"}
    assert _sorted(rows) == _sorted([
        {"TimeUnix": _time(0), "MetricName": "calls", "Attributes": flag, "Value": 5.0},
        {"TimeUnix": _time(10), "MetricName": "calls", "Attributes": flag, "Value": 8.0},
        {"TimeUnix": _time(0), "MetricName": "calls",
         "Attributes": {"service_name": "frontend", "span_name": "GET"}, "Value": 40.0},
    ])


def test_readme_find_a_sum_metric_by_name_and_attribute(demo: ServerProcess) -> None:
    rows = demo.sql("select TimeUnix,MetricName,Attributes,Value from otel_metrics_sum\n"
                    "where MetricName='calls' and Attributes['service_name']='featureflagservice'\n"
                    "limit 100")
    flag = {"service_name": "featureflagservice", "span_name": "GET"}
    assert _sorted(rows) == _sorted([
        {"TimeUnix": _time(0), "MetricName": "calls", "Attributes": flag, "Value": 5.0},
        {"TimeUnix": _time(10), "MetricName": "calls", "Attributes": flag, "Value": 8.0},
    ])


@pytest.mark.parametrize("view", sorted(EXPORTER_COLUMNS))
def test_every_column_of_the_exporter_schema_is_there(demo: ServerProcess, view: str) -> None:
    described = {row["column_name"]: row["column_type"]
                 for row in demo.sql(f"DESCRIBE {view}")}
    assert {name: described.get(name) for name in EXPORTER_COLUMNS[view]} == \
        EXPORTER_COLUMNS[view]


def test_exemplar_fields_as_the_exporter_writes_them(demo: ServerProcess) -> None:
    rows = demo.sql("""
        SELECT "Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value",
               "Exemplars.SpanId", "Exemplars.TraceId"
        FROM otel_metrics_gauge WHERE MetricName = 'queue_depth'""")
    assert rows == [{
        # Rendered as Attributes are (the Collector's AsString); unset ids are ''.
        "Exemplars.FilteredAttributes": [
            {"big": "1e+21", "customer": "acme", "ratio": "0.25", "raw": "Af8=",
             "retries": "2", "sampled": "true", "tiny": "1e-7", "whole": "2"}, {}],
        "Exemplars.TimeUnix": [_time(4), _time(4.5)],
        "Exemplars.Value": [7.0, 1.5],
        "Exemplars.SpanId": [SPAN.hex(), ""],
        "Exemplars.TraceId": [TRACE.hex(), ""],
    }]


def test_exemplars_looked_up_the_clickhouse_way(demo: ServerProcess) -> None:
    # ClickHouse: has(Exemplars.TraceId, '…'), Exemplars.FilteredAttributes[1]['customer'].
    rows = demo.sql(f"""
        SELECT MetricName, "Exemplars.FilteredAttributes"[1]['customer'] AS customer
        FROM otel_metrics_gauge WHERE list_contains("Exemplars.TraceId", '{TRACE.hex()}')""")
    assert rows == [{"MetricName": "queue_depth", "customer": "acme"}]
    for view, name, value in [("otel_metrics_sum", "calls", None),
                              ("otel_metrics_histogram", "latency", 1.75),
                              ("otel_metrics_exponential_histogram", "latency_exp", 2.5)]:
        got = demo.sql(f"""SELECT "Exemplars.Value"[1] AS v, "Exemplars.TraceId"[1] AS trace
                           FROM {view} WHERE MetricName = '{name}' LIMIT 1""")
        assert got == [{"v": value, "trace": TRACE.hex() if value else None}], view


def test_array_and_map_values_keep_their_otlp_json(demo: ServerProcess) -> None:
    assert demo.scalar("""SELECT "Exemplars.FilteredAttributes"[1]['tags']
                          FROM otel_metrics_exponential_histogram""") == \
        '{"arrayValue":{"values":[{"stringValue":"a"}]}}'


def test_value_at_quantiles_fields(demo: ServerProcess) -> None:
    assert demo.sql("""SELECT "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value"
                       FROM otel_metrics_summary WHERE MetricName = 'rpc_duration'""") == [
        {"ValueAtQuantiles.Quantile": [0.5, 0.99], "ValueAtQuantiles.Value": [1.0, 4.5]}]
    # ClickHouse's ARRAY JOIN ValueAtQuantiles is DuckDB's unnest of both lists side by side.
    assert demo.sql("""SELECT unnest("ValueAtQuantiles.Quantile") AS q,
                              unnest("ValueAtQuantiles.Value") AS v
                       FROM otel_metrics_summary ORDER BY q""") == [
        {"q": 0.5, "v": 1.0}, {"q": 0.99, "v": 4.5}]


def test_the_exporter_table_name_and_the_old_alias(demo: ServerProcess) -> None:
    query = ("SELECT MetricName, Count, Sum, Scale, ZeroCount, PositiveOffset, "
             "PositiveBucketCounts, \"Exemplars.Value\" FROM {}")
    want = [{"MetricName": "latency_exp", "Count": 4, "Sum": 9.0, "Scale": 1, "ZeroCount": 1,
             "PositiveOffset": 2, "PositiveBucketCounts": [1, 2], "Exemplars.Value": [2.5]}]
    assert demo.sql(query.format("otel_metrics_exponential_histogram")) == want
    assert demo.sql(query.format("otel_metrics_exp_histogram")) == want
