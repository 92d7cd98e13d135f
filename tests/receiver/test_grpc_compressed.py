"""gRPC messages reach the decoder compressed (grpc core's per-message decompression is off)
and are inflated where they are decoded: the same points stored, the same limit and errors,
with decode workers and without."""

from __future__ import annotations

import gzip
import zlib

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otel_hms.receiver.decode_pool import DecodePool
from otel_hms.receiver.errors import InvalidRequest, TooLarge
from otel_hms.receiver.payload import grpc_message

from conftest import StartServer
from otlp_requests import gauge_request

T = 1_767_225_600 * 10**9
EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def _request(n: int = 40) -> ExportMetricsServiceRequest:
    return gauge_request("compressed.gauge", [({"route": f"/r{i % 5}", "i": str(i)}, T + i,
                                               i * 0.25) for i in range(n)])


def test_grpc_message_inflates_gzip_and_zlib() -> None:
    body = _request().SerializeToString()
    assert grpc_message(gzip.compress(body), len(body)) == body
    assert grpc_message(zlib.compress(body), len(body)) == body
    assert grpc_message(body, len(body)) is body


def test_grpc_message_keeps_a_protobuf_that_looks_like_zlib() -> None:
    # field 15 varint 0x9c...: a zlib header by its first two bytes, not a zlib stream
    body = b"\x78\x9c\x01" + _request(3).SerializeToString()
    assert (body[0] << 8 | body[1]) % 31 == 0
    assert grpc_message(body, 10**6) is body


def test_grpc_message_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\x00" * 1_000_000)
    with pytest.raises(TooLarge, match=r"Decompressed message larger than max \(over 999999 "
                                       r"bytes\); send smaller batches or raise "
                                       r"max_request_bytes"):
        grpc_message(bomb, 999_999)
    assert len(grpc_message(bomb, 1_000_000)) == 1_000_000


def test_grpc_message_refuses_broken_gzip() -> None:
    whole = gzip.compress(_request().SerializeToString())
    with pytest.raises(InvalidRequest, match="^gzip message is truncated$"):
        grpc_message(whole[:len(whole) // 2], 10**6)
    with pytest.raises(InvalidRequest, match="^cannot decompress gzip message: "):
        grpc_message(b"\x1f\x8b\x08\x00garbage-garbage", 10**6)


def test_pool_inflates_in_the_worker() -> None:
    body = _request().SerializeToString()
    pool = DecodePool(1)
    try:
        plain, _ = pool.decode(body)
        inflated, _ = pool.decode(gzip.compress(body), len(body))
        with pytest.raises(TooLarge, match="Decompressed message larger than max"):
            pool.decode(gzip.compress(body), len(body) - 1)
    finally:
        pool.close()
    assert inflated.accepted == plain.accepted == 40
    assert inflated.prepared is not None and plain.prepared is not None
    assert inflated.prepared["gauge"].equals(plain.prepared["gauge"])


@pytest.mark.parametrize("workers", ["0", "1"])
@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate,
                                         grpc.Compression.NoCompression])
def test_compressed_exports_are_stored(start_server: StartServer, workers: str,
                                       compression: grpc.Compression) -> None:
    server = start_server("--decode-workers", workers)
    with grpc.insecure_channel(server.grpc, compression=compression) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        response = stub.Export(_request(), timeout=30)
    assert not response.HasField("partial_success")
    rows = server.sql(f"SELECT time_unix_nano - {T} AS i, value FROM points_gauge ORDER BY 1")
    assert [(r["i"], r["value"]) for r in rows] == [(i, i * 0.25) for i in range(40)]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_gzip_bomb_is_resource_exhausted(start_server: StartServer, workers: str) -> None:
    server = start_server("--decode-workers", workers, "--max-request-bytes", "100000")
    # 120 kB of empty unknown fields after two points: ~1 kB of gzip on the wire
    big = _request(2).SerializeToString() + b"\x12\x00" * 60_000
    assert len(gzip.compress(big)) < 2_000
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.RpcError) as caught:
            call(big, timeout=30, compression=grpc.Compression.Gzip)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details() == ("Decompressed message larger than max (over 100000 "
                                      "bytes); send smaller batches or raise max_request_bytes")
    assert server.scalar("SELECT count(*) FROM points_gauge") == 0
