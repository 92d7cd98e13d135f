"""TLS on both OTLP endpoints with the stock exporters, and backpressure senders can retry."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
import trustme
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter
from opentelemetry.sdk.resources import Resource

from conftest import StartServer
from otlp_requests import gauge_request

T0 = 1_700_000_000_000_000_000


def _export_once(exporter: MetricExporter, name: str, value: int) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "tls"}),
                             metric_readers=[reader])
    provider.get_meter("tls").create_counter(name).add(value, {"secure": "yes"})
    data = reader.get_metrics_data()
    assert data is not None
    result = exporter.export(data)
    provider.shutdown()
    exporter.shutdown()
    assert result.name == "SUCCESS"


def test_tls_on_grpc_and_http(start_server: StartServer, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    # requests prefers these machine-wide bundles over the exporter's certificate_file.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (tmp_path / "cert.pem", tmp_path / "key.pem",
                                    tmp_path / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    server = start_server("--tls-cert", str(cert_file), "--tls-key", str(key_file))

    credentials = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
    _export_once(GrpcExporter(endpoint=f"localhost:{server.grpc_port}", insecure=False,
                              credentials=credentials), "tls.grpc", 3)
    _export_once(HttpExporter(endpoint=f"https://localhost:{server.http_port}/v1/metrics",
                              certificate_file=str(ca_file)), "tls.http", 4)
    rows = server.sql("SELECT MetricName, ValueInt FROM otel_metrics_sum ORDER BY MetricName")
    assert rows == [{"MetricName": "tls.grpc", "ValueInt": 3},
                    {"MetricName": "tls.http", "ValueInt": 4}]


def test_full_write_queue_answers_503_with_retry_after_and_loses_nothing(
        start_server: StartServer) -> None:
    server = start_server("--max-pending-points", "1")
    statuses: list[int] = []
    retry_after: list[str | None] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for batch in range(15):
            points = [({"w": str(worker), "i": str(i)}, T0 + batch, float(i))
                      for i in range(2000)]
            body = gauge_request("backpressure", points).SerializeToString()
            for _attempt in range(500):  # retry as an SDK does, bounded
                request = urllib.request.Request(
                    server.http_url, data=body, method="POST",
                    headers={"Content-Type": "application/x-protobuf"})
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        with lock:
                            statuses.append(response.status)
                        break
                except urllib.error.HTTPError as exc:
                    with lock:
                        statuses.append(exc.code)
                        retry_after.append(exc.headers.get("Retry-After"))

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) == 6 * 15
    assert retry_after == ["1"] * statuses.count(503)
    assert server.scalar("SELECT count(*) FROM otel_metrics_gauge") == 6 * 15 * 2000
    status = server.sql_result("SELECT 1")  # the server is still answering
    assert status["rows"] == [[1]]
    with urllib.request.urlopen(f"http://{server.api}/api/v1/status", timeout=5) as busy:
        assert json.load(busy)["writer"]["rejected_busy"] == statuses.count(503)
