"""Acknowledged means committed: SIGKILL loses nothing acknowledged; SIGTERM drains and exits 0."""

from __future__ import annotations

import signal
import threading
import time

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc

from conftest import StartServer, wait_until
from otlp_requests import gauge_request

BASE_NS = 1_700_000_000_000_000_000


def _sender(address: str, worker: int, acked: list[int], stop: threading.Event) -> None:
    """Send batches of 200 points whose values identify them; record what was acknowledged."""
    channel = grpc.insecure_channel(address)
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
    batch = 0
    try:
        while not stop.is_set() and batch < 10_000:
            first = (worker * 10_000 + batch) * 200
            points = [({"worker": str(worker), "slot": str(i % 50)}, BASE_NS + first + i,
                       float(first + i)) for i in range(200)]
            try:
                stub.Export(gauge_request("durability.probe", points), timeout=5)
            except grpc.RpcError:
                return  # the server is gone; what was not acknowledged may be lost
            acked.extend(range(first, first + 200))
            batch += 1
    finally:
        channel.close()


def test_sigkill_during_concurrent_exports_loses_nothing_acknowledged(
        start_server: StartServer) -> None:
    server = start_server()
    acked: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_sender, args=(server.grpc, w, acked, stop))
               for w in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 20_000, timeout=60, message="20,000 acknowledged points")
        server.kill()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    acknowledged = set(acked)

    restarted = start_server(db=server.db)
    stored = {int(r["v"]) for r in restarted.sql(
        "SELECT Value AS v FROM otel_metrics_gauge WHERE MetricName = 'durability.probe'")}
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged points lost, e.g. {sorted(missing)[:5]}"
    # Restarting on the same file carries on: the next export lands beside the old points.
    points = [({"worker": "after"}, BASE_NS + 10**12, 42.0)]
    channel = grpc.insecure_channel(restarted.grpc)
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
    stub.Export(gauge_request("durability.probe", points), timeout=5)
    channel.close()
    assert restarted.scalar("SELECT count(*) FROM otel_metrics_gauge "
                            "WHERE Attributes['worker'] = 'after'") == 1


def test_sigterm_drains_commits_and_exits_zero(start_server: StartServer) -> None:
    server = start_server()
    acked: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=_sender, args=(server.grpc, 0, acked, stop))
    thread.start()
    try:
        wait_until(lambda: len(acked) >= 2_000, timeout=30, message="2,000 acknowledged points")
        started = time.monotonic()
        code = server.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(30)
    assert code == 0
    assert elapsed < 10
    restarted = start_server(db=server.db)
    count = restarted.scalar(
        "SELECT count(*) FROM otel_metrics_gauge WHERE MetricName = 'durability.probe'")
    assert count >= len(acked)


def test_sigint_exits_zero(start_server: StartServer) -> None:
    server = start_server()
    assert server.stop(signal.SIGINT) == 0
