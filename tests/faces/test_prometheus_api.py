"""The Prometheus API at ``/prometheus`` of a real ``otel-hms serve``: Grafana's data source
calls, the bearer token, form handling as Go's ``FormValue``, and the same bytes as a real
Prometheus 2.42 for the calls both can answer."""

from __future__ import annotations

from pathlib import Path

from conftest import StartServer
from prometheus_server import PrometheusProcess, request


def test_grafana_connection_test_and_the_same_bytes_as_prometheus(
        start_server: StartServer, tmp_path: Path) -> None:
    server = start_server()
    base = f"{server.api_url}/prometheus"
    prometheus = PrometheusProcess(tmp_path)
    try:
        # Grafana's "Save & test": POST 1+1 at time=4, then buildinfo
        assert request(f"{base}/api/v1/query", {"query": "1+1", "time": "4"}) == (
            200, b'{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}')
        for path, form in [
            ("/api/v1/query", {"query": "1+1", "time": "4"}),
            ("/api/v1/query", {"query": "vector(1) * 2", "time": "1.5"}),
            ("/api/v1/query", {"query": "foo{", "time": "1"}),
            ("/api/v1/query_range", {"query": "time() * 2", "start": "0", "end": "30",
                                     "step": "15"}),
            ("/api/v1/query_range", {"query": "1", "start": "0", "end": "11001", "step": "1"}),
        ]:
            for method in ("GET", "POST"):
                assert request(base + path, form, method) == request(
                    prometheus.url + path, form, method), (path, form, method)
        status, body = request(f"{base}/api/v1/status/buildinfo", method="GET")
        assert status == 200 and body.startswith(
            b'{"status":"success","data":{"version":"2.42.0","revision":"')
        assert request(f"{base}/api/v1/nosuch", method="GET") == request(
            f"{prometheus.url}/api/v1/nosuch", method="GET") == (404, b"404 page not found\n")
    finally:
        prometheus.stop()


def test_a_body_value_wins_over_the_url_and_get_equals_post(start_server: StartServer) -> None:
    server = start_server()
    url = f"{server.api_url}/prometheus/api/v1/query"
    assert request(f"{url}?query=2&time=1", {"query": "1"}) == (
        200, b'{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}')
    assert request(url, {"query": "3", "time": "1"}, "GET") == request(
        url, {"query": "3", "time": "1"}, "POST")


def test_unsupported_queries_are_execution_errors(start_server: StartServer) -> None:
    server = start_server()
    status, body = request(f"{server.api_url}/prometheus/api/v1/query_range",
                           {"query": "sum(histogram_fraction(0, 1, x_total))",
                            "start": "0", "end": "60", "step": "15"})
    assert status == 422
    assert body.startswith(b'{"status":"error","errorType":"execution","error":"not supported '
                           b"yet: the function histogram_fraction();")


def test_the_bearer_token_guards_it(start_server: StartServer) -> None:
    server = start_server("--auth-token", "s3cret")
    url = f"{server.api_url}/prometheus/api/v1/query"
    status, body = request(url, {"query": "1", "time": "1"})
    assert status == 401
    assert request(url, {"query": "1", "time": "1"},
                   headers={"Authorization": "Bearer s3cret"}) == (
        200, b'{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}')
    assert request(f"{server.api_url}/prometheus/api/v1/status/buildinfo", method="GET")[0] == 401
