"""``/prometheus/api/v1/series``, ``/labels`` and ``/label/<name>/values`` of a real
``otel-hms serve`` over OTLP data, under the names Prometheus' OTLP translator gives it; the
refusals byte for byte as a real Prometheus 2.42's."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.proto.metrics.v1 import metrics_pb2

from conftest import ServerProcess, StartServer
from metric_builders import (
    T0_S,
    at,
    attributes,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    sum_metric,
)
from metric_builders import request as otlp_request
from prometheus_server import PrometheusProcess, request


def _load(server: ServerProcess) -> None:
    usage = gauge_metric("system.memory.usage", [
        number_point({"state": "used"}, 0, 10.0), number_point({"state": "free"}, 0, 5.0)])
    usage.unit = "By"
    usage.description = "Memory in use, by state."
    served = sum_metric("http.server.requests", [
        number_point({"http.route": "/apply"}, 60, 3, start=-60),
        number_point({"http.route": "/pay"}, 60, 1, start=-60)])
    served.unit = "{request}"
    score = gauge_metric("satisfaction_score", [number_point({}, 120, 0.9)])
    score.unit = "1"
    latency = histogram_metric("latency", [histogram_point({}, 0, [1.0], [1, 0])])
    server.export(otlp_request(usage, served, score, latency, service="permits",
                               resource={"service.namespace": "gov",
                                         "service.instance.id": "i-1"}))
    later = gauge_metric("system.memory.usage", [number_point({"state": "used"}, 3600, 7.0)])
    later.unit = "By"
    server.export(otlp_request(later, service="other"))


def _data(server: ServerProcess, path: str, form: dict[str, str] | None = None,
          method: str = "GET") -> object:
    status, body = request(f"{server.api_url}/prometheus/api/v1/{path}", form, method)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "success"
    return answer["data"]


def test_series_labels_and_values_under_prometheus_names(start_server: StartServer) -> None:
    server = start_server()
    _load(server)
    job = {"job": "gov/permits", "instance": "i-1"}
    assert _data(server, "series", {"match[]": "system_memory_usage_bytes"}) == [
        {"__name__": "system_memory_usage_bytes", **job, "state": "free"},
        {"__name__": "system_memory_usage_bytes", **job, "state": "used"},
        {"__name__": "system_memory_usage_bytes", "job": "other", "state": "used"},
    ]
    assert _data(server, "series", {"match[]": '{job=~"gov/.*", state!~"free|"}'},
                 "POST") == [
        {"__name__": "system_memory_usage_bytes", **job, "state": "used"}]
    assert _data(server, "series", {"match[]": '{__name__=~"http_.*"}'}) == [
        {"__name__": "http_server_requests_total", "http_route": "/apply", **job},
        {"__name__": "http_server_requests_total", "http_route": "/pay", **job}]
    assert _data(server, "label/__name__/values") == [
        "http_server_requests_total", "latency_bucket", "latency_count", "latency_sum",
        "satisfaction_score_ratio", "system_memory_usage_bytes"]
    assert _data(server, "labels") == ["__name__", "http_route", "instance", "job", "le",
                                       "state"]
    assert _data(server, "series", {"match[]": 'latency_bucket{le!="+Inf"}'}) == [
        {"__name__": "latency_bucket", **job, "le": "1"}]
    assert _data(server, "label/le/values") == ["+Inf", "1"]
    assert _data(server, "labels", {"match[]": "satisfaction_score_ratio"}, "POST") == [
        "__name__", "instance", "job"]
    assert _data(server, "label/job/values") == ["gov/permits", "other"]
    assert _data(server, "label/state/values", {"match[]": '{job="other"}'}) == ["used"]
    assert _data(server, "label/nosuch/values") == []
    # start/end: the "other" service sent its only point an hour after T0
    late = {"start": str(T0_S + 1800), "end": str(T0_S + 7200)}
    assert _data(server, "label/job/values", late) == ["other"]
    assert _data(server, "label/job/values", {"start": str(T0_S), "end": str(T0_S + 30)}) == [
        "gov/permits"]
    assert _data(server, "series", {"match[]": "up", **late}) == []
    assert _data(server, "label/job/values", {"limit": "1"}) == ["gov/permits"]
    # metadata: type, help and unit per family, as the data source's editor shows them
    assert _data(server, "metadata") == {
        "http_server_requests_total": [{"type": "counter", "help": "", "unit": ""}],
        "latency": [{"type": "histogram", "help": "", "unit": ""}],
        "satisfaction_score_ratio": [{"type": "gauge", "help": "", "unit": "ratio"}],
        "system_memory_usage_bytes": [
            {"type": "gauge", "help": "", "unit": "bytes"},
            {"type": "gauge", "help": "Memory in use, by state.", "unit": "bytes"}],
    }
    assert _data(server, "metadata", {"metric": "latency"}) == {
        "latency": [{"type": "histogram", "help": "", "unit": ""}]}
    assert _data(server, "metadata", {"limit": "1"}) == {
        "http_server_requests_total": [{"type": "counter", "help": "", "unit": ""}]}
    assert _data(server, "metadata", {"metric": "nosuch"}) == {}


def test_refusals_as_prometheus(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server()
    prometheus = PrometheusProcess(tmp_path)
    try:
        for path, form, method in [
            ("series", {}, "GET"), ("series", {"match[]": '{job=""}'}, "GET"),
            ("series", {"match[]": "rate(x[5m])"}, "POST"),
            ("series", {"match[]": "x[5m]"}, "GET"), ("series", {"match[]": "1"}, "GET"),
            ("series", {"match[]": "foo{"}, "GET"),
            ("series", {"match[]": "up", "start": "x"}, "GET"),
            ("series", {"match[]": "up", "end": "x"}, "POST"),
            ("series", {"match[]": 'up{a=~"("}'}, "GET"),
            ("labels", {"match[]": "foo{"}, "GET"), ("labels", {"start": "x"}, "POST"),
            ("labels", {"match[]": '{job=~".*"}'}, "GET"),
            ("label/a.b/values", {}, "GET"),
            ("label/job/values", {"match[]": '{job=""}'}, "GET"),
            ("label/job/values", {"end": "nope"}, "GET"),
            ("series", {"match[]": "up", "start": "2", "end": "1"}, "GET"),
            ("metadata", {"limit": "x"}, "GET"), ("metadata", {"limit": "0"}, "GET"),
            ("metadata", {}, "GET"), ("metadata", {"metric": "up", "limit": "-1"}, "GET"),
        ]:
            ours = request(f"{server.api_url}/prometheus/api/v1/{path}", form, method)
            assert ours == request(f"{prometheus.url}/api/v1/{path}", form, method), (
                path, form)
    finally:
        prometheus.stop()


def test_query_exemplars(start_server: StartServer, tmp_path: Path) -> None:
    """Exemplars of the series the query's selectors match, whatever surrounds them; the
    refusals and the answers without data byte for byte as a real Prometheus 2.42's."""
    server = start_server()
    point = number_point({"route": "/a"}, 10, 3.0)
    point.exemplars.append(metrics_pb2.Exemplar(
        filtered_attributes=attributes({"user.id": "u1", "n": "5"}), time_unix_nano=at(9.5),
        as_double=2.25, span_id=bytes.fromhex("0102030405060708"),
        trace_id=bytes.fromhex("000102030405060708090a0b0c0d0e0f")))
    served = sum_metric("served_total", [point, number_point({"route": "/b"}, 10, 1.0)])
    server.export(otlp_request(served, service="s"))
    base = f"{server.api_url}/prometheus/api/v1/query_exemplars"
    expected = (
        b'{"status":"success","data":[{"seriesLabels":{"__name__":"served_total","job":"s",'
        b'"route":"/a"},"exemplars":[{"labels":{"n":"5","span_id":"0102030405060708",'
        b'"trace_id":"000102030405060708090a0b0c0d0e0f","user_id":"u1"},"value":"2.25",'
        b'"timestamp":' + f"{T0_S + 9}.500".encode() + b"}]}]}")
    for query in ("served_total", "sum(rate(served_total[5m])) + on() group_left vector(0)"):
        assert request(base, {"query": query, "start": str(T0_S),
                              "end": str(T0_S + 60)}) == (200, expected), query
    assert request(base, {"query": "served_total", "start": str(T0_S + 10)}) == (
        200, b'{"status":"success","data":[]}')
    prometheus = PrometheusProcess(tmp_path)
    try:
        for form in [{"query": "1"}, {}, {"query": "up", "start": "2", "end": "1"},
                     {"query": "up{"}, {"query": "up", "start": "x"},
                     {"query": "test", "start": "1796418425123", "end": "1796418425123"}]:
            assert request(base, form, "GET") == request(
                f"{prometheus.url}/api/v1/query_exemplars", form, "GET"), form
    finally:
        prometheus.stop()
