"""Decode worker processes: the same batches as decoding in-process, a dead worker fails only
its request (retryably) and is replaced, and workers stop with the server, however it stops."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
from concurrent.futures import Future
from typing import Any

import grpc
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otel_hms.receiver.decode import Decoder
from otel_hms.receiver.decode_pool import DecodePool
from otel_hms.receiver.errors import InvalidRequest, Overloaded
from otel_hms.storage.arrow_batches import PREPARED_SCHEMAS, from_ipc, prepare, to_ipc
from otel_hms.storage.batch import DecodedBatch

from conftest import ServerProcess, StartServer, wait_until
from otlp_requests import gauge_request, kv

T = 1_767_225_600 * 10**9
EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def mixed_request(offset: int = 0) -> bytes:
    """Gauges (double and int), a cumulative sum, a histogram and two bad points."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend([kv("service.name", "pool"), kv("host.name", "h1")])
    sm = rm.scope_metrics.add()
    sm.scope.name = "pool.scope"
    gauge = sm.metrics.add(name="pool.gauge", unit="1")
    for i in range(50):
        dp = gauge.gauge.data_points.add(time_unix_nano=T + offset + i)
        dp.attributes.extend([kv("route", f"/r{i % 7}"), kv("n", str(i))])
        if i % 2:
            dp.as_int = i
        else:
            dp.as_double = i / 4
    bad = gauge.gauge.data_points.add(time_unix_nano=0, as_double=1.0)
    bad.attributes.append(kv("route", "/bad"))
    total = sm.metrics.add(name="pool.requests")
    total.sum.aggregation_temporality = 2
    total.sum.is_monotonic = True
    for i in range(20):
        dp = total.sum.data_points.add(start_time_unix_nano=T, time_unix_nano=T + offset + i,
                                       as_int=offset + i)
        dp.attributes.append(kv("code", str(200 + i % 3)))
    hist = sm.metrics.add(name="pool.duration", unit="s")
    hist.histogram.aggregation_temporality = 2
    for i in range(10):
        hp = hist.histogram.data_points.add(
            start_time_unix_nano=T, time_unix_nano=T + offset + i, count=6, sum=1.5,
            explicit_bounds=[0.1, 1.0], bucket_counts=[1, 2, 3], min=0.01, max=2.0)
        hp.attributes.append(kv("route", f"/h{i}"))
    odd = hist.histogram.data_points.add(time_unix_nano=T + offset, count=1,
                                         explicit_bounds=[1.0, 0.5], bucket_counts=[1, 0, 0])
    odd.attributes.append(kv("route", "/odd"))
    return request.SerializeToString()


def view(batch: DecodedBatch) -> tuple[Any, ...]:
    assert batch.prepared is not None
    tables = {kind: table.to_pylist() for kind, table in sorted(batch.prepared.items())}
    return (tables, batch.series, batch.accepted, batch.rejected, batch.problems,
            batch.error_message)


def committed(callback: Any) -> None:
    future: Future[int] = Future()
    future.set_result(1)
    callback(future)


def test_pool_decodes_what_the_server_process_would() -> None:
    local = Decoder()
    pool = DecodePool(1)
    try:
        for offset in (0, 1000):  # cold caches, then series seen but not yet committed
            body = mixed_request(offset)
            expected = prepare(local.decode_bytes(body))
            assert expected.rejected == 2 and len(expected.series) == 63
            got, on_commit = pool.decode(body)
            assert view(got) == view(expected)
            assert on_commit is not None
        # told of the commit, the worker stops sending the rows, as the local decoder does
        local.known.update(expected.series)
        committed(on_commit)
        body = mixed_request(2000)
        expected = prepare(local.decode_bytes(body))
        assert expected.series == {} and expected.accepted == 80
        got, on_commit = pool.decode(body)
        assert view(got) == view(expected) and on_commit is None
        with pytest.raises(InvalidRequest) as raised:
            pool.decode(b"\xff\xff\xff")
        with pytest.raises(InvalidRequest) as raised_locally:
            local.decode_bytes(b"\xff\xff\xff")
        assert str(raised.value) == str(raised_locally.value)
        assert pool.status().restarts == 0
    finally:
        pool.close()
    assert not _alive(pool.status().pids[0])


def test_workers_decode_concurrent_requests_alike() -> None:
    bodies = [mixed_request(offset) for offset in range(0, 8000, 1000)]
    expected = [view(prepare(Decoder().decode_bytes(body))) for body in bodies]
    pool = DecodePool(2)
    got: dict[int, tuple[Any, ...]] = {}
    try:
        def send(i: int) -> None:
            got[i] = view(pool.decode(bodies[i])[0])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        pids = pool.status().pids
    finally:
        pool.close()
    assert [got.get(i) for i in range(len(bodies))] == expected
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids)


def request_in_a_stopped_worker(pool: DecodePool
                                ) -> tuple[int, threading.Thread, list[BaseException]]:
    """Stop the pool's one worker (SIGSTOP) and send it a request from a thread: the worker's
    pid, the thread, and the list that receives the request's error."""
    worker = pool.status().pids[0]
    pool.decode(mixed_request())
    os.kill(worker, signal.SIGSTOP)
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            pool.decode(mixed_request(1000))
        except BaseException as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: pool.status().in_flight == 1, message="the request in the worker")
    return worker, sender, outcome


def test_a_killed_worker_fails_its_request_and_is_replaced() -> None:
    pool = DecodePool(1, timeout=20)
    try:
        first, sender, outcome = request_in_a_stopped_worker(pool)
        os.kill(first, signal.SIGKILL)
        sender.join(20)
        assert len(outcome) == 1 and isinstance(outcome[0], Overloaded)
        assert f"decode worker {first} stopped" in str(outcome[0])
        status = wait_until(lambda: (s := pool.status()).ready == 1 and s,
                            message="a replacement worker")
        assert status.restarts == 1 and status.workers == 1 and status.pids[0] != first
        batch, _ = pool.decode(mixed_request(2000))
        assert batch.accepted == 80 and batch.rejected == 2
    finally:
        pool.close()


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _status(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{server.api}/api/v1/status", timeout=10) as r:
        status: dict[str, Any] = json.load(r)
        return status


def _grpc_export(server: ServerProcess, body: bytes) -> bytes:
    with grpc.insecure_channel(server.grpc) as channel:
        reply: bytes = channel.unary_unary(EXPORT)(body, timeout=30)
        return reply


def test_server_replaces_a_dead_worker_and_stores_the_retry(start_server: StartServer) -> None:
    server = start_server("--decode-workers", "1")
    _grpc_export(server, mixed_request())
    first = _status(server)["decode"]["pids"][0]
    os.kill(first, signal.SIGSTOP)
    outcome: list[Any] = []

    def send() -> None:
        try:
            outcome.append(_grpc_export(server, mixed_request(1000)))
        except grpc.RpcError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: _status(server)["decode"]["in_flight"] == 1,
               message="the request in the worker")
    os.kill(first, signal.SIGKILL)
    sender.join(30)
    assert isinstance(outcome[0], grpc.RpcError)
    assert outcome[0].code() == grpc.StatusCode.UNAVAILABLE
    _grpc_export(server, mixed_request(1000))  # the sender's retry
    decode = _status(server)["decode"]
    assert decode["restarts"] == 1 and decode["pids"][0] != first
    assert server.scalar("SELECT count(*) FROM points_gauge") == 100
    assert server.scalar("SELECT count(*) FROM points_sum") == 40
    assert server.scalar("SELECT count(*) FROM points_histogram") == 20
    assert server.scalar("SELECT count(*) FROM series") == 63


def test_workers_stop_with_the_server(start_server: StartServer) -> None:
    server = start_server("--decode-workers", "2")
    _grpc_export(server, mixed_request())
    pids = _status(server)["decode"]["pids"]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    assert server.stop(signal.SIGTERM, timeout=15) == 0
    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=5,
               message="the workers to exit")
    assert "stopped; store closed cleanly" in server.log.read_text()

    killed = start_server("--decode-workers", "2")
    pids = _status(killed)["decode"]["pids"]
    killed.kill()
    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=10,
               message="the workers of a killed server to exit")


def test_decode_workers_zero_decodes_in_the_server(start_server: StartServer) -> None:
    server = start_server("--decode-workers", "0")
    server.export(gauge_request("inproc", [({"a": "1"}, T, 1.5)]))
    assert "decode" not in _status(server)
    assert server.scalar("SELECT count(*) FROM points_gauge") == 1


def test_workers_get_the_attribute_limit(start_server: StartServer) -> None:
    server = start_server("--decode-workers", "1", "--max-attributes-per-point", "1")
    reply = _grpc_export(server, gauge_request(
        "limited", [({"a": "1", "b": "2"}, T, 1.0), ({"a": "1"}, T, 2.0)]).SerializeToString())
    assert b"more than the limit of 1" in reply
    assert server.scalar("SELECT count(*) FROM points_gauge") == 1


def test_arrow_tables_survive_the_pipe() -> None:
    # the tables come back with the store's schema, time column included
    pool = DecodePool(1)
    try:
        batch, _ = pool.decode(mixed_request())
    finally:
        pool.close()
    assert batch.prepared is not None
    assert batch.prepared["gauge"].schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert batch.prepared["gauge"].num_rows == 50


@pytest.mark.parametrize("kind", sorted(PREPARED_SCHEMAS))
def test_every_point_table_crosses_as_ipc(kind: str) -> None:
    schema = PREPARED_SCHEMAS[kind]
    one_row = pa.Table.from_pylist([{"series_id": 7, "time_unix_nano": T}], schema)
    two_chunks = pa.concat_tables([one_row, one_row])
    for table in (one_row, two_chunks, schema.empty_table()):
        back = from_ipc(kind, to_ipc(table).to_pybytes())
        assert back.schema == schema
        assert back.to_pylist() == table.to_pylist()


def test_close_stops_a_hung_worker_and_fails_its_request() -> None:
    pool = DecodePool(1, timeout=20)
    worker, sender, outcome = request_in_a_stopped_worker(pool)
    pool.close(timeout=0.5)
    sender.join(10)
    assert not sender.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Overloaded)
    assert not _alive(worker)
    with pytest.raises(Overloaded, match="shutting down"):
        pool.decode(mixed_request())


def test_a_caller_arriving_as_a_worker_frees_up_waits_its_turn() -> None:
    """Waiting callers take a free worker first come, first served: one arriving just as a
    worker frees up must not take it from those already waiting (under steady load a waiter
    could be overtaken again and again until its 30 s run out)."""
    pool = DecodePool(1, timeout=10)
    try:
        pool.wait_ready()
        held = pool._acquire()
        order: list[str] = []

        def waiter() -> None:
            worker = pool._acquire()
            order.append("waiting first")
            pool._release(worker)

        first = threading.Thread(target=waiter)
        first.start()
        wait_until(lambda: pool.status().waiting == 1, message="a caller waiting")
        pool._release(held)
        late = pool._acquire()  # arrives as the worker frees up
        order.append("arrived late")
        pool._release(late)
        first.join(10)
        assert order == ["waiting first", "arrived late"]
        assert pool.status().waiting == 0
    finally:
        pool.close()
