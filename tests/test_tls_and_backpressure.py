"""TLS on both OTLP endpoints with the stock exporters and on the API port, and backpressure
senders can retry."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from conftest import ServerProcess, StartServer
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


@dataclass(frozen=True)
class Certs:
    cert: Path
    key: Path
    ca: Path


@pytest.fixture
def certs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certs:
    """A certificate for 127.0.0.1 and localhost, its key, and the authority that signed it."""
    # requests prefers these machine-wide bundles over the exporter's certificate_file.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    found = Certs(tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(found.cert))
    cert.private_key_pem.write_to_path(str(found.key))
    ca.cert_pem.write_to_path(str(found.ca))
    return found


def test_tls_on_grpc_and_http(start_server: StartServer, certs: Certs) -> None:
    server = start_server("--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
                          ca=certs.ca)
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    _export_once(GrpcExporter(endpoint=f"localhost:{server.grpc_port}", insecure=False,
                              credentials=credentials), "tls.grpc", 3)
    _export_once(HttpExporter(endpoint=f"https://localhost:{server.http_port}/v1/metrics",
                              certificate_file=str(certs.ca)), "tls.http", 4)
    rows = server.sql("SELECT MetricName, ValueInt FROM otel_metrics_sum ORDER BY MetricName")
    assert rows == [{"MetricName": "tls.grpc", "ValueInt": 3},
                    {"MetricName": "tls.http", "ValueInt": 4}]


def _get(server: ServerProcess, path: str, token: str | None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(f"{server.api_url}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=server.ssl_context) as r:
            return r.status, r.headers["content-type"], r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], exc.read()


def _first_event(server: ServerProcess, path: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{server.api_url}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10, context=server.ssl_context) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                event: dict[str, Any] = json.loads(line[6:])
                return event
    raise AssertionError("the stream ended before its first event")


def test_api_dashboard_and_stream_over_tls_with_token(start_server: StartServer,
                                                      certs: Certs) -> None:
    token = "tls-s3cret"
    server = start_server("--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
                          "--auth-token", token, ca=certs.ca)
    server.token = token
    now = time.time_ns()
    _export_once(HttpExporter(endpoint=f"https://localhost:{server.http_port}/v1/metrics",
                              certificate_file=str(certs.ca),
                              headers={"Authorization": f"Bearer {token}"}), "tls.api", 7)
    assert "API https://" in server.log.read_text()

    assert _get(server, "/healthz", None)[:2] == (200, "application/json")
    assert _get(server, "/api/v1/status", None)[0] == 401
    status, _, body = _get(server, "/api/v1/status", token)
    assert (status, json.loads(body)["writer"]["points_committed"]) == (200, 1)
    status, kind, page = _get(server, "/", None)
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert b"<title>" in page
    event = _first_event(server, "/api/v1/stream?metric=tls.api&agg=max&range=10m&step=10m",
                         token)
    assert [p[1] for s in event["series"] for p in s["points"]] == [7.0]
    assert event["series"][0]["points"][0][0] >= now // 1_000_000 - 600_000
    assert server.sql("SELECT MetricName, ValueInt FROM otel_metrics_sum") == [
        {"MetricName": "tls.api", "ValueInt": 7}]

    # `otel-hms sql` reaches it as https://, trusting the authority through SSL_CERT_FILE.
    cli = subprocess.run(
        [sys.executable, "-m", "otel_hms", "sql", "--api", server.api_url, "--token", token,
         "--format", "csv", "SELECT MetricName, ValueInt FROM otel_metrics_sum"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SSL_CERT_FILE": str(certs.ca)})
    assert (cli.returncode, cli.stdout, cli.stderr) == (0, "MetricName,ValueInt\ntls.api,7\n", "")

    # Plain HTTP gets no answer at all: the port speaks only TLS.
    plain = http.client.HTTPConnection("127.0.0.1", server.api_port, timeout=10)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        plain.request("GET", "/healthz")
        plain.getresponse()
    plain.close()
    # And a client that does not trust the authority refuses the server.
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(f"{server.api_url}/healthz", timeout=10,
                               context=ssl.create_default_context())
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)


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
