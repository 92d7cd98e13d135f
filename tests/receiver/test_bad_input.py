"""Bad input against a real ``otel-hms serve``: every case gets the status the README promises,
an error message a person can act on, and leaves the server up with earlier data intact.

The module's server runs with ``--max-request-bytes 100000`` and holds a baseline batch sent
before any bad input; after each case the baseline is read back exactly and the total number of
stored points is compared with what the case may add.
"""

from __future__ import annotations

import gzip
import http.client
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
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from conftest import ServerProcess, StartServer

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
LIMIT = 100_000
EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
T0 = 1_700_000_000_000_000_000
POINT_TABLES = ("points_gauge", "points_sum", "points_histogram", "points_exp_histogram",
                "points_summary")
# gRPC code of the google.rpc.Status in an HTTP error body, by HTTP status.
STATUS_CODE = {400: grpc.StatusCode.INVALID_ARGUMENT.value[0],
               401: grpc.StatusCode.UNAUTHENTICATED.value[0],
               413: grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
               415: grpc.StatusCode.UNIMPLEMENTED.value[0]}


# -- requests --------------------------------------------------------------------------------------


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def request_of(*metrics: metrics_pb2.Metric) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=Resource(attributes=[kv("service.name", "bad-input")]),
        scope_metrics=[metrics_pb2.ScopeMetrics(metrics=list(metrics))])])


def gauge(name: str, *values: int, attributes: list[KeyValue] | None = None
          ) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0 + i, as_int=v, attributes=attributes or [])
        for i, v in enumerate(values)]))


def histogram(name: str, points: int) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, histogram=metrics_pb2.Histogram(
        aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE, data_points=[
            metrics_pb2.HistogramDataPoint(time_unix_nano=T0 + i, count=3, sum=4.5,
                                           bucket_counts=[1, 2], explicit_bounds=[2.0])
            for i in range(points)]))


BASELINE = request_of(gauge("baseline.gauge", 10, 20, 30, 40, 50), histogram("baseline.hist", 2))
VALID = request_of(gauge("valid.gauge", 1, 2, 3))


# -- the server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a small request limit, holding the baseline batch."""
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    proc = ServerProcess(tmp / "store.duckdb", ["--max-request-bytes", str(LIMIT)], {},
                         tmp / "serve.log")
    try:
        proc.wait_ready()
        with grpc.insecure_channel(proc.grpc) as channel:
            stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
            assert stub.Export(BASELINE, timeout=30) == ExportMetricsServiceResponse()
        yield proc
    finally:
        proc.stop()


def total_points(server: ServerProcess) -> int:
    return int(server.scalar(
        "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in POINT_TABLES)))


def assert_intact(server: ServerProcess, total_before: int, added: int = 0) -> None:
    """The server still answers, the baseline reads back exactly, nothing else appeared."""
    assert server.ready(), "the server stopped answering /healthz"
    assert server.proc.poll() is None
    assert server.sql("SELECT TimeUnixNano AS t, ValueInt AS v FROM otel_metrics_gauge "
                      "WHERE MetricName = 'baseline.gauge' ORDER BY t") == [
        {"t": T0 + i, "v": v} for i, v in enumerate([10, 20, 30, 40, 50])]
    assert server.sql("SELECT TimeUnixNano AS t, Count AS c, Sum AS s, BucketCounts AS b "
                      "FROM otel_metrics_histogram WHERE MetricName = 'baseline.hist' "
                      "ORDER BY t") == [
        {"t": T0 + i, "c": 3, "s": 4.5, "b": [1, 2]} for i in range(2)]
    assert total_points(server) == total_before + added


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def http_request(server: ServerProcess, body: bytes | None, content_type: str | None = PROTOBUF,
                 encoding: str | None = None, method: str = "POST",
                 headers: dict[str, str] | None = None, chunked: bool = False) -> Reply:
    sent = dict(headers or {})
    if content_type:
        sent["Content-Type"] = content_type
    if encoding:
        sent["Content-Encoding"] = encoding
    conn = http.client.HTTPConnection(server.http, timeout=30)
    try:
        if chunked and body is not None:
            chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)]
            conn.request(method, "/v1/metrics", body=iter(chunks), headers=sent,
                         encode_chunked=True)
        else:
            conn.request(method, "/v1/metrics", body=body, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


def error_status(reply: Reply, content_type: str) -> status_pb2.Status:
    """The google.rpc.Status of an error reply, which comes in the request's content type."""
    assert reply.headers["content-type"] == content_type
    if content_type == JSON:
        return json_format.Parse(reply.body, status_pb2.Status())
    return status_pb2.Status.FromString(reply.body)


def assert_http_error(reply: Reply, status: int, content_type: str, *words: str) -> str:
    assert reply.status == status, reply.body
    error = error_status(reply, content_type)
    assert error.code == STATUS_CODE[status]
    for word in words:
        assert word in error.message, (word, error.message)
    return error.message


def grpc_raw(server: ServerProcess, body: bytes, **kwargs: Any) -> grpc.RpcError:
    """Send raw bytes as the Export request; return the error the call ended with."""
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.RpcError) as caught:
            call(body, timeout=30, **kwargs)
    return caught.value


def grpc_export(server: ServerProcess, request: ExportMetricsServiceRequest,
                **kwargs: Any) -> ExportMetricsServiceResponse:
    with grpc.insecure_channel(server.grpc) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        response: ExportMetricsServiceResponse = stub.Export(request, timeout=30, **kwargs)
        return response


def grpc_export_error(server: ServerProcess, request: ExportMetricsServiceRequest,
                      **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        grpc_export(server, request, **kwargs)
    return caught.value


def otlp_json(request: ExportMetricsServiceRequest) -> bytes:
    return json.dumps(json_format.MessageToDict(request, use_integers_for_enums=True)).encode()


def invalid_utf8_name(request: ExportMetricsServiceRequest, name: str) -> bytes:
    """``request`` serialized with the metric name's first byte made invalid UTF-8."""
    raw = request.SerializeToString()
    field = bytes([0x0A, len(name)]) + name.encode()
    assert raw.count(field) == 1
    return raw.replace(field, bytes([0x0A, len(name), 0xFF]) + name.encode()[1:])


def vm_hwm_kib(server: ServerProcess) -> int:
    """Peak resident memory of the server process so far."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


# -- bodies the HTTP receiver must refuse ----------------------------------------------------------

VALID_PB = VALID.SerializeToString()
VALID_JSON = otlp_json(VALID)
DEEP = 2000

HTTP_CASES: dict[str, tuple[bytes, str | None, str | None, int, tuple[str, ...]]] = {
    # id: (body, content type, content encoding, status, words the message must contain)
    "garbage-bytes": (b"\xff\xfe\xfd\xfc this is not protobuf", PROTOBUF, None, 400,
                      ("not a valid OTLP ExportMetricsServiceRequest protobuf",)),
    "truncated-protobuf": (VALID_PB[:-3], PROTOBUF, None, 400,
                           ("not a valid OTLP ExportMetricsServiceRequest protobuf",)),
    "half-a-protobuf": (VALID_PB[:len(VALID_PB) // 2], PROTOBUF, None, 400,
                        ("not a valid OTLP ExportMetricsServiceRequest protobuf",)),
    "invalid-utf8-in-protobuf-string": (invalid_utf8_name(VALID, "valid.gauge"), PROTOBUF, None,
                                        400, ("not a valid OTLP", "UTF-8")),
    "invalid-utf8-in-json": (VALID_JSON.replace(b"valid.gauge", b"valid.\xc3\x28gauge"), JSON,
                             None, 400, ("JSON body is not valid UTF-8", "at byte")),
    "lone-surrogate-in-json": (VALID_JSON.replace(b"valid.gauge", b"valid.\\ud800gauge"), JSON,
                               None, 400, ("not an OTLP metrics request", "surrogate")),
    "malformed-json": (b'{"resourceMetrics": [{"scopeMetrics": [', JSON, None, 400,
                       ("malformed JSON at line 1 column 40",)),
    "json-not-an-object": (b"[]", JSON, None, 400,
                           ("JSON body must be an object with resourceMetrics",)),
    "json-wrong-shape": (b'{"resourceMetrics": 5}', JSON, None, 400,
                         ("JSON is not an OTLP metrics request", "resourceMetrics")),
    "json-int-not-a-number": (VALID_JSON.replace(b'"asInt": "1"', b'"asInt": "one"'), JSON, None,
                              400, ("JSON is not an OTLP metrics request", "asInt")),
    "json-trace-id-not-hex": (
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": '
        b'{"dataPoints": [{"timeUnixNano": "1", "asInt": "1", "exemplars": '
        b'[{"traceId": "not-hex!"}]}]}}]}]}]}', JSON, None, 400,
        ("exemplar traceId 'not-hex!' is not hex",)),
    "protobuf-sent-as-json": (VALID_PB, JSON, None, 400, ("JSON",)),
    "wrong-content-type": (VALID_PB, "text/plain", None, 415,
                           ("Content-Type 'text/plain' is not supported",
                            "application/x-protobuf", "application/json")),
    "no-content-type": (VALID_PB, None, None, 415, ("Content-Type '(none)' is not supported",)),
    "xml-content-type": (b"<metrics/>", "application/xml", None, 415,
                         ("Content-Type 'application/xml' is not supported",)),
    "unsupported-encoding": (VALID_PB, PROTOBUF, "br", 415,
                             ("Content-Encoding 'br' is not supported", "gzip", "zstd")),
    "corrupt-gzip": (b"\x1f\x8b\x08\x00 not really gzip", PROTOBUF, "gzip", 400,
                     ("cannot decompress gzip body",)),
    "truncated-gzip": (gzip.compress(VALID_PB)[:-6], PROTOBUF, "gzip", 400,
                       ("gzip body is truncated",)),
    "corrupt-zstd": (b"definitely not zstd", PROTOBUF, "zstd", 400,
                     ("cannot decompress zstd body",)),
    "corrupt-deflate": (b"\x78\x9c garbage", PROTOBUF, "deflate", 400,
                        ("cannot decompress deflate body",)),
    "oversize-body": (b"\x00" * (LIMIT + 1), PROTOBUF, None, 413,
                      (f"request body of {LIMIT + 1} bytes is over the limit of {LIMIT} bytes",
                       "max_request_bytes")),
    "oversize-after-gzip": (gzip.compress(VALID_PB * (LIMIT // len(VALID_PB) + 1)), PROTOBUF,
                            "gzip", 413, (f"larger than {LIMIT} bytes after decompression",)),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_rejects_bad_body(server: ServerProcess, case: str) -> None:
    body, content_type, encoding, status, words = HTTP_CASES[case]
    before = total_points(server)
    reply = http_request(server, body, content_type, encoding)
    assert_http_error(reply, status, JSON if content_type == JSON else PROTOBUF, *words)
    assert_intact(server, before)


def test_http_oversize_chunked_body_without_content_length(server: ServerProcess) -> None:
    before = total_points(server)
    reply = http_request(server, b"\x00" * (3 * LIMIT), chunked=True)
    assert_http_error(reply, 413, PROTOBUF, f"request body is over the limit of {LIMIT} bytes",
                      "max_request_bytes")
    assert_intact(server, before)


def test_http_compression_bombs_stop_at_the_limit(server: ServerProcess) -> None:
    """~90 KB of gzip inflating to 90 MB, ~32 KB of zstd to 1 GB: 413, memory stays flat."""
    chunk = b"\x00" * (1 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzip_bomb = b"".join(deflater.compress(chunk) for _ in range(90)) + deflater.flush()
    compressor = zstandard.ZstdCompressor().compressobj()
    zstd_bomb = b"".join(compressor.compress(chunk) for _ in range(1024)) + compressor.flush()
    assert len(gzip_bomb) < LIMIT and len(zstd_bomb) < LIMIT

    before, peak_before = total_points(server), vm_hwm_kib(server)
    for bomb, encoding in ((gzip_bomb, "gzip"), (zstd_bomb, "zstd")):
        reply = http_request(server, bomb, PROTOBUF, encoding)
        assert_http_error(reply, 413, PROTOBUF,
                          f"request is larger than {LIMIT} bytes after decompression")
    grown_mib = (vm_hwm_kib(server) - peak_before) / 1024
    assert grown_mib < 48, f"server peak memory grew by {grown_mib:.0f} MiB"
    assert_intact(server, before)


def test_http_truncated_zstd_is_refused(server: ServerProcess) -> None:
    before = total_points(server)
    body = zstandard.ZstdCompressor().compress(VALID_PB)[:-4]
    reply = http_request(server, body, PROTOBUF, "zstd")
    assert_intact(server, before)
    assert_http_error(reply, 400, PROTOBUF, "zstd body is truncated")


def test_http_deeply_nested_json_does_not_take_the_server_down(server: ServerProcess) -> None:
    before = total_points(server)
    for body in (b'{"x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
                 b'{"resourceMetrics": ' + b"[" * DEEP + b"]" * DEEP + b"}"):
        reply = http_request(server, body, JSON)
        assert reply.status >= 400
        assert_intact(server, before)


def test_http_deeply_nested_json_is_invalid_argument(server: ServerProcess) -> None:
    reply = http_request(server, b'{"x": ' + b"[" * DEEP + b"]" * DEEP + b"}", JSON)
    assert_http_error(reply, 400, JSON, "nested")


# -- what fuzzing found (test_fuzz.py; the inputs are kept in fuzz_corpus/) --------------------

CORPUS = Path(__file__).parent / "fuzz_corpus"


def test_json_number_past_its_integer_field_is_400(server: ServerProcess) -> None:
    """``1e999`` is infinity to Python's json; an integer field cannot take it (was a 500)."""
    before = total_points(server)
    body = (CORPUS / "json" / "crash-infinite-enum").read_bytes()
    assert b'"aggregationTemporality": 1e9992' in body
    reply = http_request(server, body, JSON)
    assert assert_http_error(reply, 400, JSON) == (
        "JSON is not an OTLP metrics request: a number is out of its field's range (cannot "
        "convert float infinity to integer)")
    assert_intact(server, before)


def test_corrupt_resource_without_scopes_is_400_on_both_protocols(server: ServerProcess
                                                                  ) -> None:
    """A ResourceMetrics whose resource bytes are not a Resource and which has no scopes was
    acknowledged as an empty export: its resource went unread.  Now upb reads it."""
    before = total_points(server)
    body = (CORPUS / "protobuf" / "crash-resource-without-scopes").read_bytes()
    assert body == b"\n\x05\n\x03sva"  # resource_metrics { resource: b"sva" (a group) }
    message = assert_http_error(http_request(server, body), 400, PROTOBUF)
    assert message.startswith("body is not a valid OTLP ExportMetricsServiceRequest protobuf")
    error = grpc_raw(server, body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message
    assert_intact(server, before)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_http_wrong_method_is_405(server: ServerProcess, method: str) -> None:
    before = total_points(server)
    reply = http_request(server, None, None, method=method)
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
    assert b"POST /v1/metrics" in reply.body
    assert_intact(server, before)


# -- gRPC ------------------------------------------------------------------------------------------

GRPC_UNDECODABLE = {
    "garbage-bytes": b"\xff\xfe\xfd\xfc this is not protobuf",
    "truncated-protobuf": VALID_PB[:-3],
    "invalid-utf8-in-protobuf-string": invalid_utf8_name(VALID, "valid.gauge"),
}
# What OTLP exporters retry on; an undecodable request must not be one of them.
RETRYABLE = {grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE,
             grpc.StatusCode.DATA_LOSS}


@pytest.mark.parametrize("case", list(GRPC_UNDECODABLE))
def test_grpc_undecodable_request_fails_without_retry(server: ServerProcess, case: str) -> None:
    before = total_points(server)
    error = grpc_raw(server, GRPC_UNDECODABLE[case])
    assert error.code() not in RETRYABLE | {grpc.StatusCode.OK}
    assert "deserializ" in error.details().lower() or "protobuf" in error.details()
    assert_intact(server, before)


@pytest.mark.parametrize("case", list(GRPC_UNDECODABLE))
def test_grpc_undecodable_request_is_invalid_argument(server: ServerProcess, case: str) -> None:
    error = grpc_raw(server, GRPC_UNDECODABLE[case])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP ExportMetricsServiceRequest protobuf" in error.details()


def test_grpc_oversize_message(server: ServerProcess) -> None:
    before = total_points(server)
    big = request_of(gauge("oversize", 1, attributes=[kv("blob", "x" * (2 * LIMIT))]))
    error = grpc_export_error(server, big)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in error.details()
    assert f"vs. {LIMIT})" in error.details()
    assert_intact(server, before)


def test_grpc_gzip_bomb(server: ServerProcess) -> None:
    """2 MB of one repeated byte travels as ~2 KB of gzip; inflated it is over the limit."""
    before = total_points(server)
    bomb = request_of(gauge("bomb", 1, attributes=[kv("blob", "x" * (20 * LIMIT))]))
    assert len(gzip.compress(bomb.SerializeToString())) < LIMIT // 10
    error = grpc_export_error(server, bomb, compression=grpc.Compression.Gzip)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Decompressed message larger than max" in error.details()
    assert_intact(server, before)


# -- requests that decode but hold invalid metrics -------------------------------------------------


def nameless_request() -> ExportMetricsServiceRequest:
    nameless_gauge = gauge("", 1, 2, 3)
    nameless_hist = histogram("", 2)
    return request_of(nameless_gauge, gauge("named.after.nameless", 7), nameless_hist)


@pytest.mark.parametrize("transport", ["grpc", "http-protobuf", "http-json"])
def test_missing_metric_name(server: ServerProcess, transport: str) -> None:
    before = total_points(server)
    request = nameless_request()
    if transport == "grpc":
        response = grpc_export(server, request)
    elif transport == "http-protobuf":
        reply = http_request(server, request.SerializeToString(), PROTOBUF)
        assert (reply.status, reply.headers["content-type"]) == (200, PROTOBUF)
        response = ExportMetricsServiceResponse.FromString(reply.body)
    else:
        reply = http_request(server, otlp_json(request), JSON)
        assert (reply.status, reply.headers["content-type"]) == (200, JSON)
        response = json_format.Parse(reply.body, ExportMetricsServiceResponse())
    assert response.partial_success.rejected_data_points == 5
    message = response.partial_success.error_message
    assert "metric without a name: every metric needs a non-empty name" in message
    # The named metric in between is stored (once per transport, the same series).
    assert_intact(server, before, added=1)
    assert server.scalar("SELECT count(*) FROM series WHERE metric_name = ''") == 0


def test_metric_without_data_is_reported(server: ServerProcess) -> None:
    before = total_points(server)
    response = grpc_export(server, request_of(metrics_pb2.Metric(name="no.data.here"),
                                              gauge("with.data", 4)))
    assert response.partial_success.rejected_data_points == 0
    assert response.partial_success.error_message == (
        "metric 'no.data.here' has no data (gauge, sum, histogram, exponential_histogram or "
        "summary)")
    assert_intact(server, before, added=1)


def test_hundred_thousand_attributes(start_server: StartServer) -> None:
    """A point with 100,000 attributes is rejected by name of the limit; its neighbours stay."""
    server = start_server()
    assert grpc_export(server, BASELINE) == ExportMetricsServiceResponse()
    wide = [kv(f"attribute.{i}", i) for i in range(100_000)]
    request = request_of(
        metrics_pb2.Metric(name="wide", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=1, attributes=wide),
            metrics_pb2.NumberDataPoint(time_unix_nano=T0 + 1, as_int=2,
                                        attributes=wide[:3])])),
        metrics_pb2.Metric(name="wide.hist", histogram=metrics_pb2.Histogram(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, data_points=[
                metrics_pb2.HistogramDataPoint(time_unix_nano=T0, count=0, attributes=wide)])))
    words = ("metric 'wide': a point has 100000 attributes, more than the limit of 256 "
             "(setting max_attributes_per_point)",
             "metric 'wide.hist': a point has 100000 attributes")

    before = total_points(server)
    response = grpc_export(server, request)
    assert response.partial_success.rejected_data_points == 2
    for word in words:
        assert word in response.partial_success.error_message
    assert_intact(server, before, added=1)

    reply = http_request(server, request.SerializeToString(), PROTOBUF)
    assert reply.status == 200
    response = ExportMetricsServiceResponse.FromString(reply.body)
    assert response.partial_success.rejected_data_points == 2
    for word in words:
        assert word in response.partial_success.error_message
    assert_intact(server, before, added=2)
    assert server.sql("SELECT ValueInt AS v, Attributes AS a FROM otel_metrics_gauge "
                      "WHERE MetricName = 'wide'") == [
        {"v": 2, "a": {"attribute.0": "0", "attribute.1": "1", "attribute.2": "2"}}] * 2


# -- authentication --------------------------------------------------------------------------------


def test_bearer_token(start_server: StartServer) -> None:
    server = start_server("--auth-token", "s3cret")
    server.token = "s3cret"  # for the SQL endpoint, which wants the token as well
    right = (("authorization", "Bearer s3cret"),)
    assert grpc_export(server, BASELINE, metadata=right) == ExportMetricsServiceResponse()
    before = total_points(server)

    for metadata in (None, (("authorization", "Bearer wrong"),), (("authorization", "s3cret"),),
                     (("authorization", "bearer s3cret"),),
                     (("authorization", "Bearer s3cret2"),)):
        error = grpc_export_error(server, VALID, metadata=metadata)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "missing or wrong bearer token" in error.details()
        assert "Authorization: Bearer <token>" in error.details()
        assert_intact(server, before)

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        for content_type, body in ((PROTOBUF, VALID_PB), (JSON, VALID_JSON)):
            reply = http_request(server, body, content_type, headers=headers)
            assert_http_error(reply, 401, content_type, "missing or wrong bearer token",
                              "Authorization: Bearer <token>")
            assert_intact(server, before)
    # Authentication comes first: garbage without a token is a 401, not a 400.
    reply = http_request(server, b"\xff garbage", PROTOBUF)
    assert_http_error(reply, 401, PROTOBUF, "bearer token")

    assert grpc_export(server, VALID, metadata=right) == ExportMetricsServiceResponse()
    assert_intact(server, before, added=3)
    for content_type, body in ((PROTOBUF, VALID_PB), (JSON, VALID_JSON)):
        reply = http_request(server, body, content_type,
                             headers={"Authorization": "Bearer s3cret"})
        assert (reply.status, reply.headers["content-type"]) == (200, content_type)
    assert_intact(server, before, added=9)
    assert server.sql("SELECT ValueInt AS v, count(*) AS n FROM otel_metrics_gauge "
                      "WHERE MetricName = 'valid.gauge' GROUP BY v ORDER BY v") == [
        {"v": 1, "n": 3}, {"v": 2, "n": 3}, {"v": 3, "n": 3}]


def test_http_401_carries_a_bearer_challenge(start_server: StartServer) -> None:
    server = start_server("--auth-token", "s3cret")
    reply = http_request(server, VALID_PB, PROTOBUF)
    assert_http_error(reply, 401, PROTOBUF, "bearer token")
    assert reply.headers.get("www-authenticate", "").startswith("Bearer")
