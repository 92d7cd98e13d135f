"""Hand-built OTLP requests for what SDKs rarely or never emit, sent to a real ``otel-hms serve``.

Every request is built from ``opentelemetry.proto`` messages and sent as it is over gRPC, as
OTLP/HTTP protobuf, and as OTLP/HTTP JSON (the protobuf message rendered by the OTLP/JSON rules:
lowerCamelCase names, int64 as strings, enums as integers, trace and span ids as hex).  The
server answers an export only after the store has committed it, so the SQL that follows each
export sees the points without waiting.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import itertools
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import zstandard
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from conftest import ServerProcess

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRANSPORTS = ("grpc", "http-protobuf", "http-json")

# 2023-11-14T22:13:20Z, and a time with sub-microsecond digits (the store keeps microseconds
# in TimeUnix and the exact nanoseconds in TimeUnixNano).
T0 = 1_700_000_000_000_000_000
T0_ISO = "2023-11-14T22:13:20+00:00"
T1 = T0 + 123_456_789
T1_ISO = "2023-11-14T22:13:20.123456+00:00"
START = T0 - 60_000_000_000
START_ISO = "2023-11-14T22:12:20+00:00"

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


# -- the server and ways to talk to it -------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole module; every test writes its own metric names."""
    tmp: Path = tmp_path_factory.mktemp("handbuilt")
    proc = ServerProcess(tmp / "store.duckdb", [], {}, tmp / "serve.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[metrics_service_pb2_grpc.MetricsServiceStub]:
    with grpc.insecure_channel(server.grpc) as channel:
        yield metrics_service_pb2_grpc.MetricsServiceStub(channel)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def http_post(server: ServerProcess, body: bytes, content_type: str,
              encoding: str | None = None) -> Reply:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    conn = http.client.HTTPConnection(server.http, timeout=30)
    try:
        conn.request("POST", "/v1/metrics", body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


def otlp_json(request: ExportMetricsServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form of a request: like proto3 JSON but enums as ints, ids as hex."""
    doc: dict[str, Any] = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rm in doc.get("resourceMetrics", []):
        for sm in rm.get("scopeMetrics", []):
            for metric in sm.get("metrics", []):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    for dp in metric.get(kind, {}).get("dataPoints", []):
                        for exemplar in dp.get("exemplars", []):
                            for key in ("traceId", "spanId"):
                                if key in exemplar:
                                    exemplar[key] = base64.b64decode(exemplar[key]).hex()
    return doc


def compress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


def export(server: ServerProcess, stub: metrics_service_pb2_grpc.MetricsServiceStub,
           request: ExportMetricsServiceRequest, transport: str,
           encoding: str | None = None) -> ExportMetricsServiceResponse:
    """Send ``request`` over ``transport``; the reply must be a success in the request's type."""
    if transport == "grpc":
        compression = (grpc.Compression.Gzip if encoding == "gzip"
                       else grpc.Compression.NoCompression)
        response: ExportMetricsServiceResponse = stub.Export(request, timeout=30,
                                                             compression=compression)
        return response
    if transport == "http-protobuf":
        reply = http_post(server, compress(request.SerializeToString(), encoding), PROTOBUF,
                          encoding)
        assert (reply.status, reply.headers["content-type"]) == (200, PROTOBUF), reply.body
        return ExportMetricsServiceResponse.FromString(reply.body)
    assert transport == "http-json"
    body = json.dumps(otlp_json(request)).encode()
    reply = http_post(server, compress(body, encoding), JSON, encoding)
    assert (reply.status, reply.headers["content-type"]) == (200, JSON), reply.body
    return json_format.Parse(reply.body, ExportMetricsServiceResponse())


def export_ok(server: ServerProcess, stub: metrics_service_pb2_grpc.MetricsServiceStub,
              request: ExportMetricsServiceRequest, transport: str,
              encoding: str | None = None) -> None:
    response = export(server, stub, request, transport, encoding)
    assert not response.HasField("partial_success"), response


# -- building requests -----------------------------------------------------------------------------


def av(value: Any) -> AnyValue:
    """An AnyValue from a Python value (bytes, bool, int, float, str, list, dict, None)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[av(v) for v in value]))
    return AnyValue(kvlist_value=KeyValueList(values=kvs(value)))


def kvs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=av(v)) for k, v in attributes.items()]


def make_request(*metrics: metrics_pb2.Metric, resource: dict[str, Any] | None = None,
                 scope: InstrumentationScope | None = None, resource_schema_url: str = "",
                 scope_schema_url: str = "") -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=Resource(attributes=kvs(resource or {"service.name": "handbuilt"})),
        schema_url=resource_schema_url,
        scope_metrics=[metrics_pb2.ScopeMetrics(
            scope=scope or InstrumentationScope(name="handbuilt"), schema_url=scope_schema_url,
            metrics=list(metrics))],
    )])


def rows(server: ServerProcess, view: str, name: str, columns: str = "*") -> list[dict[str, Any]]:
    return server.sql(f"SELECT {columns} FROM {view} WHERE MetricName = '{name}' "
                      "ORDER BY TimeUnixNano, SeriesId")


def point_count(server: ServerProcess, name: str) -> int:
    return int(server.scalar(
        "SELECT count(*) FROM series s JOIN (SELECT series_id FROM points_gauge UNION ALL "
        "SELECT series_id FROM points_sum UNION ALL SELECT series_id FROM points_histogram "
        "UNION ALL SELECT series_id FROM points_exp_histogram UNION ALL SELECT series_id FROM "
        f"points_summary) p USING (series_id) WHERE s.metric_name = '{name}'"))


# -- summary, exemplars, delta sums ----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_summary_quantiles(server: ServerProcess, stub: Any, transport: str) -> None:
    name = f"summary.{transport}"
    metric = metrics_pb2.Metric(name=name, unit="ms", summary=metrics_pb2.Summary(data_points=[
        metrics_pb2.SummaryDataPoint(
            start_time_unix_nano=START, time_unix_nano=T0, count=40, sum=1234.5,
            attributes=kvs({"route": "/a"}),
            quantile_values=[
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.0, value=1.5),
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=20.25),
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=99.0),
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=250.0),
            ]),
        metrics_pb2.SummaryDataPoint(time_unix_nano=T1, count=0, sum=0.0),
    ]))
    export_ok(server, stub, make_request(metric), transport)

    got = rows(server, "otel_metrics_summary", name,
               "Attributes, StartTimeUnix, StartTimeUnixNano, TimeUnix, TimeUnixNano, Count, Sum, "
               "ValueAtQuantiles, Flags, MetricUnit, ServiceName")
    assert got == [
        {"Attributes": {"route": "/a"}, "StartTimeUnix": START_ISO, "StartTimeUnixNano": START,
         "TimeUnix": T0_ISO, "TimeUnixNano": T0, "Count": 40, "Sum": 1234.5,
         "ValueAtQuantiles": [{"Quantile": 0.0, "Value": 1.5}, {"Quantile": 0.5, "Value": 20.25},
                              {"Quantile": 0.99, "Value": 99.0},
                              {"Quantile": 1.0, "Value": 250.0}],
         "Flags": 0, "MetricUnit": "ms", "ServiceName": "handbuilt"},
        {"Attributes": {}, "StartTimeUnix": "1970-01-01T00:00:00+00:00", "StartTimeUnixNano": 0,
         "TimeUnix": T1_ISO, "TimeUnixNano": T1, "Count": 0, "Sum": 0.0,
         "ValueAtQuantiles": [], "Flags": 0, "MetricUnit": "ms", "ServiceName": "handbuilt"},
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exemplars(server: ServerProcess, stub: Any, transport: str) -> None:
    gauge_name, hist_name = f"exemplars.gauge.{transport}", f"exemplars.hist.{transport}"
    with_ids = metrics_pb2.Exemplar(
        time_unix_nano=T1, as_double=0.75, trace_id=TRACE_ID, span_id=SPAN_ID,
        filtered_attributes=kvs({"user.id": 42, "tenant": "acme"}))
    without_ids = metrics_pb2.Exemplar(time_unix_nano=T0, as_int=-7)
    gauge = metrics_pb2.Metric(name=gauge_name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T1, as_double=0.75,
                                    exemplars=[with_ids, without_ids])]))
    hist = metrics_pb2.Metric(name=hist_name, histogram=metrics_pb2.Histogram(
        aggregation_temporality=CUMULATIVE, data_points=[metrics_pb2.HistogramDataPoint(
            time_unix_nano=T1, count=1, sum=0.75, bucket_counts=[1, 0], explicit_bounds=[1.0],
            exemplars=[with_ids])]))
    export_ok(server, stub, make_request(gauge, hist), transport)

    with_ids_row = {
        "FilteredAttributes": '{"tenant":{"stringValue":"acme"},"user.id":{"intValue":42}}',
        "TimeUnix": T1_ISO, "Value": 0.75, "ValueInt": None,
        "SpanId": "eee19b7ec3c1b174", "TraceId": "5b8efff798038103d269b633813fc60c"}
    without_ids_row = {"FilteredAttributes": "{}", "TimeUnix": T0_ISO, "Value": -7.0,
                       "ValueInt": -7, "SpanId": None, "TraceId": None}
    assert rows(server, "otel_metrics_gauge", gauge_name, "Value, Exemplars") == [
        {"Value": 0.75, "Exemplars": [with_ids_row, without_ids_row]}]
    assert rows(server, "otel_metrics_histogram", hist_name, "Count, Exemplars") == [
        {"Count": 1, "Exemplars": [with_ids_row]}]
    # The exemplar's own nanoseconds are kept as well as the rendered time.
    assert server.sql(
        f"SELECT list_transform(exemplars, lambda e: e.time_unix_nano) AS t FROM points_gauge "
        f"JOIN series USING (series_id) WHERE metric_name = '{gauge_name}'") == [{"t": [T1, T0]}]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_delta_sum(server: ServerProcess, stub: Any, transport: str) -> None:
    name = f"delta.{transport}"
    metric = metrics_pb2.Metric(name=name, unit="By", description="bytes moved",
                                sum=metrics_pb2.Sum(
        aggregation_temporality=DELTA, is_monotonic=False, data_points=[
            metrics_pb2.NumberDataPoint(start_time_unix_nano=START, time_unix_nano=T0, as_int=-5),
            metrics_pb2.NumberDataPoint(start_time_unix_nano=T0, time_unix_nano=T1,
                                        as_double=2.5),
        ]))
    export_ok(server, stub, make_request(metric), transport)

    assert rows(server, "otel_metrics_sum", name,
                "StartTimeUnixNano, TimeUnixNano, Value, ValueInt, AggregationTemporality, "
                "IsMonotonic, MetricUnit, MetricDescription") == [
        {"StartTimeUnixNano": START, "TimeUnixNano": T0, "Value": -5.0, "ValueInt": -5,
         "AggregationTemporality": 1, "IsMonotonic": False, "MetricUnit": "By",
         "MetricDescription": "bytes moved"},
        {"StartTimeUnixNano": T0, "TimeUnixNano": T1, "Value": 2.5, "ValueInt": None,
         "AggregationTemporality": 1, "IsMonotonic": False, "MetricUnit": "By",
         "MetricDescription": "bytes moved"},
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_number_point_layouts_across_requests(server: ServerProcess, stub: Any,
                                              transport: str) -> None:
    """With and without start time, int and double, flags, exemplars, no value; same series
    in three exports (new, then committed, then cached): every point exact, two series."""
    name = f"layouts.{transport}"
    labelled = kvs({"k": "v", "n": 1})
    for e in range(3):
        t = T0 + e * 10
        metric = metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(start_time_unix_nano=START, time_unix_nano=t,
                                        as_double=1.5 + e, attributes=labelled),
            metrics_pb2.NumberDataPoint(time_unix_nano=t + 1, as_int=-(2**63) + e,
                                        attributes=labelled),
            metrics_pb2.NumberDataPoint(start_time_unix_nano=START, time_unix_nano=t + 2,
                                        as_int=7, flags=1, attributes=labelled),
            metrics_pb2.NumberDataPoint(time_unix_nano=t + 3, as_double=0.0,
                                        attributes=labelled, exemplars=[
                                            metrics_pb2.Exemplar(time_unix_nano=t, as_int=e)]),
            metrics_pb2.NumberDataPoint(start_time_unix_nano=START, time_unix_nano=t + 4,
                                        flags=1, attributes=labelled),
            metrics_pb2.NumberDataPoint(time_unix_nano=t + 5, as_int=e),
        ]))
        export_ok(server, stub, make_request(metric), transport)

    got = rows(server, "otel_metrics_gauge", name,
               "TimeUnixNano, StartTimeUnixNano, Value, ValueInt, Flags, Attributes, "
               "len(Exemplars) AS ex")
    expected = []
    for e in range(3):
        t = T0 + e * 10
        expected += [
            (t, START, 1.5 + e, None, 0, True, None),
            (t + 1, 0, float(-(2**63) + e), -(2**63) + e, 0, True, None),
            (t + 2, START, 7.0, 7, 1, True, None),
            (t + 3, 0, 0.0, None, 0, True, 1),
            (t + 4, START, None, None, 1, True, None),
            (t + 5, 0, float(e), e, 0, False, None),
        ]
    assert got == [
        {"TimeUnixNano": t, "StartTimeUnixNano": start, "Value": value, "ValueInt": value_int,
         "Flags": flags, "Attributes": {"k": "v", "n": "1"} if labelled_point else {},
         "ex": ex}
        for t, start, value, value_int, flags, labelled_point, ex in expected]
    assert server.scalar(f"SELECT count(*) FROM series WHERE metric_name = '{name}'") == 2


# -- attributes of every AnyValue kind -------------------------------------------------------------

# (value, Attributes['k'] string form, AttributesTyped form).  Doubles, arrays and kvlists are
# plain here; test_string_form_matches_collector_asstring covers Go's number formatting.
EVERY_KIND: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "string": ("héllo ✓", "héllo ✓", {"stringValue": "héllo ✓"}),
    "empty_string": ("", "", {"stringValue": ""}),
    "bool_true": (True, "true", {"boolValue": True}),
    "bool_false": (False, "false", {"boolValue": False}),
    "int": (2**62, "4611686018427387904", {"intValue": 2**62}),
    "int_min": (-(2**63), "-9223372036854775808", {"intValue": -(2**63)}),
    "int_zero": (0, "0", {"intValue": 0}),
    "double": (1.5, "1.5", {"doubleValue": 1.5}),
    "double_neg": (-0.25, "-0.25", {"doubleValue": -0.25}),
    "bytes": (b"\x00\x01\xfe\xff", "AAH+/w==", {"bytesValue": "AAH+/w=="}),
    "array": (["a", 7, True, 0.5, b"\xff", None], '["a",7,true,0.5,"/w==",null]',
              {"arrayValue": {"values": [
                  {"stringValue": "a"}, {"intValue": 7}, {"boolValue": True},
                  {"doubleValue": 0.5}, {"bytesValue": "/w=="}, {}]}}),
    "empty_array": ([], "[]", {"arrayValue": {"values": []}}),
    "kvlist": ({"a": "x", "b": 2**62, "c": [False], "d": {"e": None}},
               '{"a":"x","b":4611686018427387904,"c":[false],"d":{"e":null}}',
               {"kvlistValue": {"values": [
                   {"key": "a", "value": {"stringValue": "x"}},
                   {"key": "b", "value": {"intValue": 2**62}},
                   {"key": "c", "value": {"arrayValue": {"values": [{"boolValue": False}]}}},
                   {"key": "d", "value": {"kvlistValue": {"values": [
                       {"key": "e", "value": {}}]}}},
               ]}}),
    "empty": (None, "", {}),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_anyvalue_kind_in_point_resource_and_scope(server: ServerProcess, stub: Any,
                                                         transport: str) -> None:
    name = f"anyvalue.{transport}"
    values = {k: v for k, (v, _, _) in EVERY_KIND.items()}
    strings = {k: s for k, (_, s, _) in EVERY_KIND.items()}
    typed = {k: t for k, (_, _, t) in EVERY_KIND.items()}
    metric = metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=1, attributes=kvs(values))]))
    scope = InstrumentationScope(name="kinds", attributes=kvs(values))
    export_ok(server, stub, make_request(metric, resource={"service.name": "kinds", **values},
                                         scope=scope), transport)

    [row] = rows(server, "otel_metrics_gauge", name,
                 "Attributes, AttributesTyped, ResourceAttributes, ResourceAttributesTyped, "
                 "ScopeAttributes, ScopeAttributesTyped, ServiceName, ScopeName")
    assert row["Attributes"] == strings
    assert json.loads(row["AttributesTyped"]) == typed
    assert row["ResourceAttributes"] == {"service.name": "kinds", **strings}
    assert json.loads(row["ResourceAttributesTyped"]) == {
        "service.name": {"stringValue": "kinds"}, **typed}
    assert row["ScopeAttributes"] == strings
    assert json.loads(row["ScopeAttributesTyped"]) == typed
    assert (row["ServiceName"], row["ScopeName"]) == ("kinds", "kinds")
    # The string map answers plain lookups; a missing key is NULL, not ''.
    assert server.sql(
        "SELECT Attributes['int'] AS i, Attributes['bool_false'] AS b, Attributes['nope'] AS n, "
        "ResourceAttributes['bytes'] AS r, ScopeAttributes['kvlist'] AS s "
        f"FROM otel_metrics_gauge WHERE MetricName = '{name}'") == [
        {"i": "4611686018427387904", "b": "false", "n": None, "r": "AAH+/w==",
         "s": strings["kvlist"]}]
    # The typed JSON keeps the 64-bit int exact for SQL too.
    assert server.scalar(
        "SELECT json_extract(AttributesTyped, '$.int_min.intValue')::BIGINT "
        f"FROM otel_metrics_gauge WHERE MetricName = '{name}'") == -(2**63)


def test_string_form_matches_collector_asstring(server: ServerProcess, stub: Any) -> None:
    name = "asstring.collector"
    attributes = {"whole": 2.0, "big": 1e20, "tiny": 1e-7, "neg_zero": -0.0,
                  "kvlist": {"b": 1, "a": 2}, "array": [1.0, 2.5]}
    metric = metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=1,
                                    attributes=kvs(attributes))]))
    export_ok(server, stub, make_request(metric), "grpc")
    [row] = rows(server, "otel_metrics_gauge", name, "Attributes")
    assert row["Attributes"] == {"whole": "2", "big": "100000000000000000000", "tiny": "1e-7",
                                 "neg_zero": "-0", "kvlist": '{"a":2,"b":1}',
                                 "array": "[1,2.5]"}


# -- special values --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_nan_and_infinities(server: ServerProcess, stub: Any, transport: str) -> None:
    gauge_name, summary_name = f"nonfinite.gauge.{transport}", f"nonfinite.summary.{transport}"
    nan, inf = float("nan"), float("inf")
    gauge = metrics_pb2.Metric(name=gauge_name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0 + i, as_double=v,
                                    attributes=kvs({"as_attr": v}))
        for i, v in enumerate([nan, inf, -inf])]))
    summary = metrics_pb2.Metric(name=summary_name, summary=metrics_pb2.Summary(data_points=[
        metrics_pb2.SummaryDataPoint(time_unix_nano=T0, count=3, sum=inf, quantile_values=[
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=nan),
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=-inf)])]))
    export_ok(server, stub, make_request(gauge, summary), transport)

    got = rows(server, "otel_metrics_gauge", gauge_name, "Value, ValueInt, Attributes")
    assert got == [
        {"Value": "NaN", "ValueInt": None, "Attributes": {"as_attr": "NaN"}},
        {"Value": "Infinity", "ValueInt": None, "Attributes": {"as_attr": "Infinity"}},
        {"Value": "-Infinity", "ValueInt": None, "Attributes": {"as_attr": "-Infinity"}},
    ]
    typed = server.sql(f"SELECT AttributesTyped AS t FROM otel_metrics_gauge "
                       f"WHERE MetricName = '{gauge_name}' ORDER BY TimeUnixNano")
    assert [json.loads(r["t"]) for r in typed] == [
        {"as_attr": {"doubleValue": v}} for v in ("NaN", "Infinity", "-Infinity")]
    # Three distinct series (NaN is a value like any other in the identity).
    assert server.scalar(f"SELECT count(DISTINCT SeriesId) FROM otel_metrics_gauge "
                         f"WHERE MetricName = '{gauge_name}'") == 3
    assert rows(server, "otel_metrics_summary", summary_name, "Sum, ValueAtQuantiles") == [
        {"Sum": "Infinity", "ValueAtQuantiles": [{"Quantile": 0.5, "Value": "NaN"},
                                                 {"Quantile": 1.0, "Value": "-Infinity"}]}]


def no_recorded_value_request(name: str) -> ExportMetricsServiceRequest:
    flag = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    return make_request(
        metrics_pb2.Metric(name=f"{name}.gauge", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=T0, flags=flag),
            metrics_pb2.NumberDataPoint(time_unix_nano=T1, as_int=3)])),
        metrics_pb2.Metric(name=f"{name}.hist", histogram=metrics_pb2.Histogram(
            aggregation_temporality=CUMULATIVE, data_points=[metrics_pb2.HistogramDataPoint(
                time_unix_nano=T0, flags=flag)])),
        metrics_pb2.Metric(name=f"{name}.summary", summary=metrics_pb2.Summary(data_points=[
            metrics_pb2.SummaryDataPoint(time_unix_nano=T0, flags=flag)])),
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_no_recorded_value_flag(server: ServerProcess, stub: Any, transport: str) -> None:
    name = f"norecorded.{transport}"
    export_ok(server, stub, no_recorded_value_request(name), transport)
    # No value was recorded, so there is none: NULL, not 0.
    assert rows(server, "otel_metrics_gauge", f"{name}.gauge", "Flags, Value, ValueInt") == [
        {"Flags": 1, "Value": None, "ValueInt": None}, {"Flags": 0, "Value": 3.0, "ValueInt": 3}]
    assert rows(server, "otel_metrics_histogram", f"{name}.hist",
                "Flags, Count, Sum, Min, Max, BucketCounts, ExplicitBounds") == [
        {"Flags": 1, "Count": 0, "Sum": None, "Min": None, "Max": None, "BucketCounts": [],
         "ExplicitBounds": []}]
    assert rows(server, "otel_metrics_summary", f"{name}.summary", "Flags, Count") == [
        {"Flags": 1, "Count": 0}]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_histogram_unset_sum_min_max_are_null(server: ServerProcess, stub: Any,
                                              transport: str) -> None:
    name = f"hist.optional.{transport}"
    metric = metrics_pb2.Metric(name=name, histogram=metrics_pb2.Histogram(
        aggregation_temporality=DELTA, data_points=[
            metrics_pb2.HistogramDataPoint(time_unix_nano=T0, count=3, bucket_counts=[1, 2, 0],
                                           explicit_bounds=[0.5, 10.0]),
            # Explicit zeros are values, not absence.
            metrics_pb2.HistogramDataPoint(time_unix_nano=T1, count=1, sum=0.0, min=0.0,
                                           max=0.0, bucket_counts=[1, 0, 0],
                                           explicit_bounds=[0.5, 10.0]),
        ]))
    export_ok(server, stub, make_request(metric), transport)
    assert rows(server, "otel_metrics_histogram", name,
                "Count, Sum, Min, Max, BucketCounts, ExplicitBounds, AggregationTemporality") == [
        {"Count": 3, "Sum": None, "Min": None, "Max": None, "BucketCounts": [1, 2, 0],
         "ExplicitBounds": [0.5, 10.0], "AggregationTemporality": 1},
        {"Count": 1, "Sum": 0.0, "Min": 0.0, "Max": 0.0, "BucketCounts": [1, 0, 0],
         "ExplicitBounds": [0.5, 10.0], "AggregationTemporality": 1},
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exponential_histogram_negative_buckets_and_zero_count(
        server: ServerProcess, stub: Any, transport: str) -> None:
    name = f"exphist.{transport}"
    buckets = metrics_pb2.ExponentialHistogramDataPoint.Buckets
    metric = metrics_pb2.Metric(name=name, exponential_histogram=metrics_pb2.ExponentialHistogram(
        aggregation_temporality=DELTA, data_points=[
            metrics_pb2.ExponentialHistogramDataPoint(
                time_unix_nano=T0, count=7, sum=-12.5, min=-40.0, max=3.0, scale=-2,
                zero_count=0, negative=buckets(offset=-3, bucket_counts=[2, 0, 1]),
                positive=buckets(offset=1, bucket_counts=[4])),
            metrics_pb2.ExponentialHistogramDataPoint(
                time_unix_nano=T1, count=5, scale=20, zero_count=5, zero_threshold=1e-9),
        ]))
    export_ok(server, stub, make_request(metric), transport)
    assert rows(server, "otel_metrics_exp_histogram", name,
                "Count, Sum, Min, Max, Scale, ZeroCount, ZeroThreshold, PositiveOffset, "
                "PositiveBucketCounts, NegativeOffset, NegativeBucketCounts, "
                "AggregationTemporality") == [
        {"Count": 7, "Sum": -12.5, "Min": -40.0, "Max": 3.0, "Scale": -2, "ZeroCount": 0,
         "ZeroThreshold": 0.0, "PositiveOffset": 1, "PositiveBucketCounts": [4],
         "NegativeOffset": -3, "NegativeBucketCounts": [2, 0, 1], "AggregationTemporality": 1},
        {"Count": 5, "Sum": None, "Min": None, "Max": None, "Scale": 20, "ZeroCount": 5,
         "ZeroThreshold": 1e-9, "PositiveOffset": 0, "PositiveBucketCounts": [],
         "NegativeOffset": 0, "NegativeBucketCounts": [], "AggregationTemporality": 1},
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_scope_resource_and_metric_metadata(server: ServerProcess, stub: Any,
                                            transport: str) -> None:
    name = f"metadata.{transport}"
    metric = metrics_pb2.Metric(
        name=name, description="Time spent — in µs, per request", unit="{request}",
        gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_double=1.0)]))
    scope = InstrumentationScope(name="io.example/instr", version="1.2.3-beta",
                                 attributes=kvs({"scope.k": "v"}), dropped_attributes_count=3)
    request = make_request(metric, resource={"service.name": "meta", "host.name": "h1"},
                           scope=scope,
                           resource_schema_url="https://opentelemetry.io/schemas/1.24.0",
                           scope_schema_url="https://opentelemetry.io/schemas/1.21.0")
    export_ok(server, stub, request, transport)
    [row] = rows(server, "otel_metrics_gauge", name,
                 "MetricDescription, MetricUnit, ScopeName, ScopeVersion, ScopeSchemaUrl, "
                 "ScopeAttributes, ScopeDroppedAttrCount, ResourceSchemaUrl, ResourceAttributes, "
                 "ServiceName")
    assert row == {
        "MetricDescription": "Time spent — in µs, per request", "MetricUnit": "{request}",
        "ScopeName": "io.example/instr", "ScopeVersion": "1.2.3-beta",
        "ScopeSchemaUrl": "https://opentelemetry.io/schemas/1.21.0",
        "ScopeAttributes": {"scope.k": "v"}, "ScopeDroppedAttrCount": 3,
        "ResourceSchemaUrl": "https://opentelemetry.io/schemas/1.24.0",
        "ResourceAttributes": {"service.name": "meta", "host.name": "h1"}, "ServiceName": "meta",
    }


# -- OTLP/JSON as other senders write it -----------------------------------------------------------


def test_otlp_json_quirks(server: ServerProcess) -> None:
    """Hex ids, int64 as strings, enums as integers, unknown fields, special doubles."""
    doc = {
        "resourceMetrics": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "json-quirks"}},
                {"key": "big", "value": {"intValue": "9223372036854775807"}},
            ], "droppedAttributesCount": 0, "someFutureResourceField": {"x": [1, 2]}},
            "schemaUrl": "https://opentelemetry.io/schemas/1.24.0",
            "scopeMetrics": [{
                "scope": {"name": "quirks", "version": "0.1", "unknownScopeField": True},
                "metrics": [
                    {"name": "json.sum", "unit": "1", "futureMetricField": "ignored",
                     "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [{
                         "startTimeUnixNano": "1700000000000000000",
                         "timeUnixNano": "1700000000123456789",
                         "asInt": "9007199254740993",
                         "attributes": [
                             {"key": "bytes", "value": {"bytesValue": "AAH+/w=="}},
                             {"key": "small", "value": {"intValue": 12}},
                         ],
                         "exemplars": [{
                             "timeUnixNano": "1700000000123456789", "asDouble": 0.5,
                             "traceId": "5B8EFFF798038103D269B633813FC60C",
                             "spanId": "eee19b7ec3c1b174",
                             "filteredAttributes": [{"key": "k", "value": {"intValue": "7"}}],
                             "unknownExemplarField": 1}],
                         "unknownPointField": {"nested": {"deeper": [None, 1.5]}},
                     }]}},
                    {"name": "json.gauge", "gauge": {"dataPoints": [
                        {"timeUnixNano": "1700000000000000000", "asDouble": "NaN"},
                        {"timeUnixNano": "1700000000000000001", "asDouble": "Infinity"},
                        {"timeUnixNano": "1700000000000000002", "asDouble": "-Infinity"},
                        {"timeUnixNano": "1700000000000000003", "asDouble": 1e308},
                    ]}},
                    {"name": "json.hist", "histogram": {
                        "aggregationTemporality": 1, "dataPoints": [{
                            "timeUnixNano": "1700000000000000000", "count": "18446744073709551615",
                            "bucketCounts": ["18446744073709551615", "0"],
                            "explicitBounds": [1.5], "flags": 1}]}},
                ],
            }],
        }],
        "someFutureTopLevelField": "ignored",
    }
    reply = http_post(server, json.dumps(doc).encode(), JSON)
    assert (reply.status, reply.headers["content-type"], json.loads(reply.body)) == (200, JSON, {})

    [row] = rows(server, "otel_metrics_sum", "json.sum",
                 "ValueInt, Value, AggregationTemporality, IsMonotonic, StartTimeUnixNano, "
                 "TimeUnixNano, TimeUnix, Attributes, AttributesTyped, ResourceAttributes, "
                 "ResourceSchemaUrl, ScopeVersion, Exemplars")
    assert row["ValueInt"] == 9007199254740993  # 2**53 + 1: exact, not rounded via a double
    assert row["Value"] == 9007199254740992.0
    assert (row["AggregationTemporality"], row["IsMonotonic"]) == (2, True)
    assert (row["StartTimeUnixNano"], row["TimeUnixNano"], row["TimeUnix"]) == (
        T0, T1, T1_ISO)
    assert row["Attributes"] == {"bytes": "AAH+/w==", "small": "12"}
    assert json.loads(row["AttributesTyped"]) == {"bytes": {"bytesValue": "AAH+/w=="},
                                                  "small": {"intValue": 12}}
    assert row["ResourceAttributes"] == {"service.name": "json-quirks",
                                         "big": "9223372036854775807"}
    assert row["ResourceSchemaUrl"] == "https://opentelemetry.io/schemas/1.24.0"
    assert row["ScopeVersion"] == "0.1"
    assert row["Exemplars"] == [{
        "FilteredAttributes": '{"k":{"intValue":7}}', "TimeUnix": T1_ISO, "Value": 0.5,
        "ValueInt": None, "SpanId": "eee19b7ec3c1b174",
        "TraceId": "5b8efff798038103d269b633813fc60c"}]
    assert [r["Value"] for r in rows(server, "otel_metrics_gauge", "json.gauge", "Value")] == [
        "NaN", "Infinity", "-Infinity", 1e308]
    assert rows(server, "otel_metrics_histogram", "json.hist",
                "Count, BucketCounts, AggregationTemporality, Flags") == [
        {"Count": 2**64 - 1, "BucketCounts": [2**64 - 1, 0], "AggregationTemporality": 1,
         "Flags": 1}]


# -- compression -----------------------------------------------------------------------------------

COMPRESSED = [("grpc", "gzip"), ("http-protobuf", "gzip"), ("http-json", "gzip"),
              ("http-protobuf", "zstd"), ("http-json", "zstd"), ("http-protobuf", "deflate")]


@pytest.mark.parametrize(("transport", "encoding"), COMPRESSED)
def test_compressed_requests(server: ServerProcess, stub: Any, transport: str,
                             encoding: str) -> None:
    name = f"compressed.{transport}.{encoding}"
    # Big and repetitive enough that the compressed body is far smaller than the message.
    metric = metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0 + i, as_int=i,
                                    attributes=kvs({"host": "h" * 200, "i": i % 10}))
        for i in range(500)]))
    export_ok(server, stub, make_request(metric), transport, encoding)
    assert server.sql(
        "SELECT count(*) AS n, sum(ValueInt) AS total, count(DISTINCT SeriesId) AS series "
        f"FROM otel_metrics_gauge WHERE MetricName = '{name}'") == [
        {"n": 500, "total": sum(range(500)), "series": 10}]


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_multi_member_compressed_body(server: ServerProcess, encoding: str) -> None:
    """A gzip body may hold several members (RFC 1952) and zstd several frames (RFC 8878)."""
    name = f"multimember.{encoding}"
    halves = [make_request(metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0 + i, as_int=i) for i in range(lo, lo + 50)
    ]))).SerializeToString() for lo in (0, 50)]
    # Serialized protobuf messages concatenate: the decompressed body is one request whose
    # resource_metrics hold both halves.
    assert len(ExportMetricsServiceRequest.FromString(b"".join(halves)).resource_metrics) == 2
    wire = b"".join(compress(half, encoding) for half in halves)
    reply = http_post(server, wire, PROTOBUF, encoding)
    assert reply.status == 200
    assert point_count(server, name) == 100


# -- partial success -------------------------------------------------------------------------------


def mixed_request(name: str) -> ExportMetricsServiceRequest:
    return make_request(
        metrics_pb2.Metric(name=f"{name}.gauge", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=1),
            metrics_pb2.NumberDataPoint(time_unix_nano=0, as_int=99),  # no time: rejected
            metrics_pb2.NumberDataPoint(time_unix_nano=T1, as_int=2),
            # times past int64 nanoseconds: rejected
            metrics_pb2.NumberDataPoint(time_unix_nano=2**64 - 1, as_int=98),
            metrics_pb2.NumberDataPoint(start_time_unix_nano=2**63, time_unix_nano=T1,
                                        as_double=97.0),
        ])),
        metrics_pb2.Metric(name=f"{name}.hist", histogram=metrics_pb2.Histogram(
            aggregation_temporality=CUMULATIVE, data_points=[
                metrics_pb2.HistogramDataPoint(time_unix_nano=T0, count=3, bucket_counts=[1, 2],
                                               explicit_bounds=[10.0]),
                # three counts for one bound: rejected
                metrics_pb2.HistogramDataPoint(time_unix_nano=T1, count=6,
                                               bucket_counts=[1, 2, 3], explicit_bounds=[10.0]),
            ])),
        # no name: both points rejected
        metrics_pb2.Metric(gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=5),
            metrics_pb2.NumberDataPoint(time_unix_nano=T1, as_int=6)])),
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_partial_success(server: ServerProcess, stub: Any, transport: str) -> None:
    name = f"partial.{transport}"
    response = export(server, stub, mixed_request(name), transport)
    assert response.partial_success.rejected_data_points == 6
    message = response.partial_success.error_message
    assert f"metric '{name}.gauge': time_unix_nano must be set to a time after 1970 (got 0)" \
        in message
    assert "(got 18446744073709551615)" in message
    assert f"metric '{name}.gauge': start_time_unix_nano out of range" in message
    assert f"metric '{name}.hist': histogram has 3 bucket counts for 1 bounds" in message
    assert "metric without a name" in message

    assert rows(server, "otel_metrics_gauge", f"{name}.gauge", "TimeUnixNano, ValueInt") == [
        {"TimeUnixNano": T0, "ValueInt": 1}, {"TimeUnixNano": T1, "ValueInt": 2}]
    assert rows(server, "otel_metrics_histogram", f"{name}.hist",
                "TimeUnixNano, Count, BucketCounts") == [
        {"TimeUnixNano": T0, "Count": 3, "BucketCounts": [1, 2]}]
    assert server.scalar("SELECT count(*) FROM series WHERE metric_name = ''") == 0


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_http_replies_in_the_request_content_type(server: ServerProcess,
                                                  content_type: str) -> None:
    name = f"replytype.{content_type.split('/')[1]}"
    request = mixed_request(name)
    body = (request.SerializeToString() if content_type == PROTOBUF
            else json.dumps(otlp_json(request)).encode())
    reply = http_post(server, body, content_type + "; charset=utf-8")
    assert (reply.status, reply.headers["content-type"]) == (200, content_type)
    if content_type == JSON:
        assert json.loads(reply.body)["partialSuccess"]["rejectedDataPoints"] == "6"
    else:
        response = ExportMetricsServiceResponse.FromString(reply.body)
        assert response.partial_success.rejected_data_points == 6
    # An error is a google.rpc.Status in the same type.
    bad = b"{" if content_type == JSON else b"\xff\xff\xff"
    reply = http_post(server, bad, content_type)
    assert (reply.status, reply.headers["content-type"]) == (400, content_type)
    if content_type == JSON:
        assert json.loads(reply.body)["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_summary_series_cache_does_not_confuse_attribute_sets(server: ServerProcess,
                                                              stub: Any) -> None:
    name = "cachekey.summary"
    first = [KeyValue(key="a"), KeyValue(key="", value=AnyValue(string_value="x"))]
    second = [KeyValue(key="a", value=AnyValue(string_value="x"))]
    metric = metrics_pb2.Metric(name=name, summary=metrics_pb2.Summary(data_points=[
        metrics_pb2.SummaryDataPoint(time_unix_nano=T0, count=1, attributes=first),
        metrics_pb2.SummaryDataPoint(time_unix_nano=T1, count=2, attributes=second)]))
    export_ok(server, stub, make_request(metric), "grpc")
    assert rows(server, "otel_metrics_summary", name, "Count, Attributes") == [
        {"Count": 1, "Attributes": {"a": "", "": "x"}},
        {"Count": 2, "Attributes": {"a": "x"}}]


# -- property: odd Unicode and huge ints survive the round trip ------------------------------------

ODD_CHARS = st.sampled_from(["\x00", "\x01", "\x7f", "\u0301", "\u200d", "\u202e", "\u2028",
                             "\ufeff", "\ufffd", "\U0001f389", "\U0010ffff", "'", '"', "\\",
                             "\n", "é", "ß", "İ", "[", "{", ":"])
odd_text = st.text(alphabet=st.one_of(st.characters(codec="utf-8"), ODD_CHARS), max_size=12)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_example_ids = itertools.count()


@settings(max_examples=25, deadline=None, database=None)
@given(attributes=st.dictionaries(odd_text, st.one_of(odd_text, int64), max_size=8),
       value=int64)
def test_roundtrip_unicode_and_huge_ints(server: ServerProcess, attributes: dict[str, Any],
                                         value: int) -> None:
    name = f"roundtrip.{next(_example_ids)}"
    request = make_request(metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=value,
                                    attributes=kvs(attributes))])),
        resource={"service.name": "roundtrip", **attributes})
    reply = http_post(server, request.SerializeToString(), PROTOBUF)
    assert (reply.status, reply.body) == (200, b"")

    [row] = rows(server, "otel_metrics_gauge", name,
                 "ValueInt, Attributes, AttributesTyped, ResourceAttributes")
    assert row["ValueInt"] == value
    assert row["Attributes"] == {k: str(v) for k, v in attributes.items()}
    assert json.loads(row["AttributesTyped"]) == {
        k: {"intValue": v} if isinstance(v, int) else {"stringValue": v}
        for k, v in attributes.items()}
    assert row["ResourceAttributes"] == {"service.name": "roundtrip",
                                         **{k: str(v) for k, v in attributes.items()}}
