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
from dataclasses import dataclass, field
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
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
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


SENDERS = 20  # half over OTLP/gRPC, half over OTLP/HTTP
BATCHES = 12  # per sender and round
POINTS = 2000  # per batch; every batch writes the same 2,000 series of its sender anew
DUCKDB_MIB = 64  # the server's --memory-limit


@dataclass
class Load:
    """What the senders saw: refusals per protocol, Retry-After values, acknowledged batches,
    and the longest any export took to be answered."""

    refused: dict[str, int] = field(default_factory=lambda: {"grpc": 0, "http": 0})
    retry_after: set[str | None] = field(default_factory=set)
    acked: list[tuple[int, int]] = field(default_factory=list)
    slowest: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, started: float) -> None:
        with self.lock:
            self.slowest = max(self.slowest, time.monotonic() - started)


def _batch(sender: int, batch: int) -> Any:
    return gauge_request("backpressure", [({"sender": str(sender), "i": str(i)}, T0 + batch,
                                           float(batch)) for i in range(POINTS)])


def _send(server: ServerProcess, sender: int, batches: range, load: Load) -> None:
    """Export each batch until it is acknowledged, retrying refusals as an SDK does (after a
    short pause: Retry-After is 1 s, which would make the test slow, not different)."""
    channel = grpc.insecure_channel(server.grpc) if sender % 2 == 0 else None
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel) if channel else None  # type: ignore[no-untyped-call]
    try:
        for batch in batches:
            request = _batch(sender, batch)
            body = request.SerializeToString()
            deadline = time.monotonic() + 120
            while True:
                assert time.monotonic() < deadline, f"batch {sender}/{batch} never stored"
                started = time.monotonic()
                if stub is not None:
                    try:
                        stub.Export(request, timeout=30)
                        load.answered(started)
                        break
                    except grpc.RpcError as exc:
                        load.answered(started)
                        assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                        with load.lock:
                            load.refused["grpc"] += 1
                else:
                    post = urllib.request.Request(
                        server.http_url, data=body, method="POST",
                        headers={"Content-Type": "application/x-protobuf"})
                    try:
                        with urllib.request.urlopen(post, timeout=30) as reply:
                            load.answered(started)
                            assert reply.status == 200
                            break
                    except urllib.error.HTTPError as exc:
                        load.answered(started)
                        assert exc.code == 503, exc
                        with load.lock:
                            load.refused["http"] += 1
                            load.retry_after.add(exc.headers.get("Retry-After"))
                time.sleep(0.02 + 0.03 * (sender % 4))
            with load.lock:
                load.acked.append((sender, batch))
    finally:
        if channel is not None:
            channel.close()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class _PeakRss(threading.Thread):
    """Samples the resident memory of the server and its decode worker every 50 ms."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], _rss_mib(pid))


def _round(server: ServerProcess, first: int, load: Load, pids: dict[str, int]
           ) -> dict[str, float]:
    """Every sender exports BATCHES batches at once; the peak memory (MiB) while they did."""
    sampler = _PeakRss(pids)
    sampler.start()
    threads = [threading.Thread(target=_send, args=(server, w, range(first, first + BATCHES),
                                                    load)) for w in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    sampler.stop.set()
    sampler.join()
    assert not any(t.is_alive() for t in threads)
    return {name: round(peak) for name, peak in sampler.peak.items()}


def test_overload_answers_unavailable_memory_stays_bounded_and_nothing_is_lost(
        start_server: StartServer) -> None:
    """20 senders against a write queue of 20,000 points: the excess is refused with
    UNAVAILABLE / 503 and retried, no export waits long for its answer, memory is bounded
    (the queue, the requests in flight, DuckDB's memory_limit), and every acknowledged point
    is stored exactly once."""
    server = start_server("--max-pending-points", "20000", "--memory-limit", f"{DUCKDB_MIB}MB")
    with urllib.request.urlopen(f"{server.api_url}/api/v1/status", timeout=5) as reply:
        (worker,) = json.load(reply)["decode"]["pids"]
    pids = {"server": server.proc.pid, "worker": worker}
    idle = {name: round(_rss_mib(pid)) for name, pid in pids.items()}
    load = Load()
    first = _round(server, 0, load, pids)
    second = _round(server, BATCHES, load, pids)
    print(f"RSS MiB idle {idle}, first round {first}, second round {second}; refused "
          f"{load.refused}; slowest answer {load.slowest:.2f} s")

    assert load.refused["grpc"] > 0 and load.refused["http"] > 0  # the queue did overflow
    assert load.retry_after == {"1"}
    # Waiting callers take a decode worker in turn: none is starved until it times out.
    assert load.slowest < 10
    assert sorted(load.acked) == [(w, b) for w in range(SENDERS) for b in range(2 * BATCHES)]
    stored = server.sql("SELECT Attributes['sender'] AS w, Value AS b, count(*) AS n, "
                        "count(DISTINCT SeriesId) AS s FROM otel_metrics_gauge GROUP BY ALL")
    assert sorted((int(r["w"]), int(r["b"]), r["n"], r["s"]) for r in stored) == [
        (w, b, POINTS, POINTS) for w in range(SENDERS) for b in range(2 * BATCHES)]
    with urllib.request.urlopen(f"{server.api_url}/api/v1/status", timeout=5) as reply:
        status = json.load(reply)
    assert status["writer"]["rejected_busy"] == sum(load.refused.values())
    assert status["writer"]["points_committed"] == SENDERS * 2 * BATCHES * POINTS
    assert status["series"] == SENDERS * POINTS
    # Bounded: sending as much again (the same series) takes no more memory, but for what
    # DuckDB may still cache of the store, up to its memory limit.  The decode worker holds
    # only the requests in flight.
    duckdb_mib = server.scalar("SELECT sum(memory_usage_bytes) / 2**20 FROM duckdb_memory()")
    assert duckdb_mib <= DUCKDB_MIB
    assert second["server"] <= first["server"] + DUCKDB_MIB + 16, (first, second)
    assert second["worker"] <= first["worker"] + 16, (first, second)
