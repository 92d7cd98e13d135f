"""Points older than ``retention_raw`` are refused in ``partial_success``, never acknowledged and
then deleted unseen; the rest of the request is stored.

At the edge the store's own writer, decoder and ``Ingest`` run in process with a fixed clock
(exactly ``retention_raw`` old is kept, a millisecond older is not), through every decode path.
Against a real ``otel-hms serve --retention-raw 30d``: hand-built requests over gRPC, OTLP/HTTP
protobuf and JSON, and the stock Python SDK exporters replaying old points; the reply, the
stored rows, ``GET /api/v1/status`` and the server's WARNING naming the sender are checked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from test_otlp_handbuilt import export, make_request

from otel_hms.receiver.decode import Decoder
from otel_hms.receiver.ingest import Ingest
from otel_hms.storage.arrow_batches import prepare
from otel_hms.storage.old_points import OldPointCheck
from otel_hms.storage.store import known_series_ids, open_store
from otel_hms.storage.writer import Writer

from conftest import ServerProcess, StartServer, wait_until

MS = 1_000_000
DAY = 86_400 * 1_000_000_000
NOW = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z, the in-process clock
EDGE = NOW - 30 * DAY  # exactly retention_raw (30d) old
TRANSPORTS = ("grpc", "http-protobuf", "http-json")
POINTS_SQL = """
    SELECT s.metric_name AS name, p.time_unix_nano AS t, p.kind FROM series s JOIN (
        SELECT series_id, time_unix_nano, 'gauge' AS kind FROM points_gauge UNION ALL
        SELECT series_id, time_unix_nano, 'sum' FROM points_sum UNION ALL
        SELECT series_id, time_unix_nano, 'histogram' FROM points_histogram UNION ALL
        SELECT series_id, time_unix_nano, 'exp' FROM points_exp_histogram UNION ALL
        SELECT series_id, time_unix_nano, 'summary' FROM points_summary) p USING (series_id)
    WHERE s.metric_name LIKE ? ORDER BY name, t
"""


def every_kind(name: str, times: list[int]) -> ExportMetricsServiceRequest:
    """One metric of each kind, each with a point at every time in ``times``."""
    start = min(times) - 60_000 * MS
    return make_request(
        metrics_pb2.Metric(name=f"{name}.gauge", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=t, as_double=1.5) for t in times])),
        metrics_pb2.Metric(name=f"{name}.sum", sum=metrics_pb2.Sum(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
            is_monotonic=True, data_points=[
                metrics_pb2.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=t,
                                            as_int=i + 1) for i, t in enumerate(times)])),
        metrics_pb2.Metric(name=f"{name}.histogram", histogram=metrics_pb2.Histogram(
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
            data_points=[metrics_pb2.HistogramDataPoint(
                start_time_unix_nano=start, time_unix_nano=t, count=3, sum=4.5,
                bucket_counts=[1, 2], explicit_bounds=[2.0]) for t in times])),
        metrics_pb2.Metric(name=f"{name}.exp", exponential_histogram=(
            metrics_pb2.ExponentialHistogram(
                aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
                data_points=[metrics_pb2.ExponentialHistogramDataPoint(
                    start_time_unix_nano=start, time_unix_nano=t, count=2, scale=1,
                    positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                        offset=0, bucket_counts=[2])) for t in times]))),
        metrics_pb2.Metric(name=f"{name}.summary", summary=metrics_pb2.Summary(data_points=[
            metrics_pb2.SummaryDataPoint(time_unix_nano=t, count=1, sum=2.0) for t in times])),
    )


KINDS = ("exp", "gauge", "histogram", "sum", "summary")


def stored(name: str, times: list[int]) -> list[dict[str, Any]]:
    """The rows ``POINTS_SQL`` finds when ``every_kind(name, ...)`` kept ``times``."""
    return [{"name": f"{name}.{kind}", "t": t, "kind": kind} for kind in KINDS for t in times]


# -- at the edge, in process -----------------------------------------------------------------------


class EdgeStore:
    """The store's writer, decoder and export path in process, its clock fixed at ``NOW``."""

    def __init__(self, path: Path) -> None:
        self.con = open_store(str(path))
        check = OldPointCheck(dt.timedelta(days=30), "30d", clock=lambda: NOW)
        self.writer = Writer(self.con, known_series_ids(self.con), old_points=check)
        self.decoder = Decoder(known=self.writer.known)
        self.ingest = Ingest(self.writer, self.decoder)

    def points(self, like: str) -> list[dict[str, Any]]:
        cur = self.con.cursor()
        found = cur.execute(POINTS_SQL, [like]).fetchall()
        return [{"name": n, "t": t, "kind": k} for n, t, k in found]

    def close(self) -> None:
        self.writer.close()
        self.con.close()


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "edge.duckdb")
    yield s
    s.close()


def test_exactly_retention_raw_old_is_kept_one_ms_more_is_refused(
        edge: EdgeStore, caplog: pytest.LogCaptureFixture) -> None:
    times = [EDGE - MS, EDGE, EDGE + MS, NOW]
    with caplog.at_level(logging.WARNING, "otel_hms.receiver"):
        response = edge.ingest.export(every_kind("edge", times), "test", sender="10.0.0.7:5 (t)")
    assert response.partial_success.rejected_data_points == 5
    assert response.partial_success.error_message == (
        "5 points older than retention_raw (30d) were not stored")
    assert edge.points("edge.%") == stored("edge", [EDGE, EDGE + MS, NOW])
    assert [r.getMessage() for r in caplog.records] == [
        "test from 10.0.0.7:5 (t): rejected 5 data points: 5 points older than retention_raw "
        "(30d) were not stored"]
    assert edge.writer.stats.points_committed == 15
    status = edge.ingest.rejections.status()
    assert status["rejected_points"] == {"retention_raw": 5}
    last = status["last_rejected"]["retention_raw"]
    assert (last["sender"], last["message"]) == (
        "10.0.0.7:5 (t)", "5 points older than retention_raw (30d) were not stored")


@pytest.mark.parametrize("path", ["parsed", "bytes", "worker"])
def test_every_decode_path_refuses_the_same_points(edge: EdgeStore, path: str) -> None:
    """upb-parsed requests, serialized ones walked in bulk, and the tables a decode worker
    prepares: the check runs where they meet, in the writer."""
    name = f"path.{path}"
    # The second request finds its series known and takes the bulk road.
    for times, refused in (([EDGE + MS, NOW - 1000 * MS], 0), ([EDGE - 1, EDGE - MS, NOW], 10)):
        request = every_kind(name, times)
        if path == "parsed":
            batch = edge.decoder.decode(request)
        elif path == "bytes":
            batch = edge.decoder.decode_bytes(request.SerializeToString())
        else:
            batch = prepare(edge.decoder.decode_bytes(request.SerializeToString()))
        assert (batch.accepted, batch.rejected) == (5 * len(times), 0)
        assert edge.writer.submit(batch).result(10) == 5 * len(times) - refused
        assert (batch.accepted, batch.rejected) == (5 * len(times) - refused, refused)
    assert batch.error_message == "10 points older than retention_raw (30d) were not stored"
    assert batch.rejected_by_reason() == {"retention_raw": 10}
    assert edge.points(f"{name}.%") == stored(name, [EDGE + MS, NOW - 1000 * MS, NOW])


def test_refused_and_malformed_points_are_reported_together(edge: EdgeStore) -> None:
    request = make_request(metrics_pb2.Metric(name="mixed", gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=EDGE - MS, as_int=1),
        metrics_pb2.NumberDataPoint(time_unix_nano=0, as_int=2),
        metrics_pb2.NumberDataPoint(time_unix_nano=NOW, as_int=3)])))
    response = edge.ingest.export(request, "test")
    assert response.partial_success.rejected_data_points == 2
    assert response.partial_success.error_message == (
        "1 point older than retention_raw (30d) was not stored; metric 'mixed': "
        "time_unix_nano must be set to a time after 1970 (got 0)")
    assert edge.points("mixed") == [{"name": "mixed", "t": NOW, "kind": "gauge"}]
    assert edge.ingest.rejections.status()["rejected_points"] == {
        "retention_raw": 1, "invalid": 1}


def test_a_request_of_only_old_points_stores_none(edge: EdgeStore) -> None:
    response = edge.ingest.export(every_kind("old", [EDGE - DAY, EDGE - 1]), "test")
    assert response.partial_success.rejected_data_points == 10
    assert edge.points("old.%") == []
    assert edge.writer.stats.points_committed == 0


def test_without_raw_retention_nothing_is_refused(tmp_path: Path) -> None:
    con = open_store(str(tmp_path / "forever.duckdb"))
    writer = Writer(con, known_series_ids(con))
    try:
        ingest = Ingest(writer, Decoder(known=writer.known))
        response = ingest.export(every_kind("forever", [1_514_764_800 * 10**9]), "test")
        assert not response.HasField("partial_success")
        assert writer.stats.points_committed == 5
    finally:
        writer.close()
        con.close()


# -- a real server ---------------------------------------------------------------------------------


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    return start_server("--retention-raw", "30d")


def status(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{server.api}/api/v1/status", timeout=10) as reply:
        found: dict[str, Any] = json.load(reply)
        return found


def server_points(server: ServerProcess, like: str) -> list[dict[str, Any]]:
    query = POINTS_SQL.replace("?", f"'{like}'")
    return server.sql(query)


def warnings_in_log(server: ServerProcess) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if "WARNING" in line]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_refuses_points_older_than_retention_raw(server: ServerProcess,
                                                        transport: str) -> None:
    now = time.time_ns()
    edge = now - 30 * DAY
    # A minute either side of the edge: the request takes far less than that to arrive.
    times = [edge - 60_000 * MS, edge + 60_000 * MS, now]
    name = f"srv.{transport.replace('-', '_')}"
    with grpc.insecure_channel(server.grpc) as channel:
        response = export(server, metrics_service_pb2_grpc.MetricsServiceStub(channel),
                          every_kind(name, times), transport)
    assert response.partial_success.rejected_data_points == 5
    assert response.partial_success.error_message == (
        "5 points older than retention_raw (30d) were not stored")
    assert server_points(server, f"{name}.%") == stored(name, times[1:])

    ingest = status(server)["ingest"]
    assert ingest["rejected_points"] == {"retention_raw": 5}
    last = ingest["last_rejected"]["retention_raw"]
    assert last["message"] == "5 points older than retention_raw (30d) were not stored"
    # the peer, and the user agent when one is sent (grpcio sends its own; http.client none)
    agent = r" \(grpc-python/.+\)" if transport == "grpc" else ""
    assert re.fullmatch(r"127\.0\.0\.1:\d+" + agent, last["sender"]), last
    assert abs(dt.datetime.fromisoformat(last["time"]).timestamp() - now / 1e9) < 60
    endpoint = "otlp/grpc" if transport == "grpc" else "otlp/http"
    logged = wait_until(lambda: [w for w in warnings_in_log(server) if "rejected" in w],
                        message="the WARNING")
    assert len(logged) == 1, logged
    assert logged[0].endswith(
        f"{endpoint} from {last['sender']}: rejected 5 data points: 5 points older than "
        "retention_raw (30d) were not stored")


def test_the_setting_is_named_as_configured(start_server: StartServer) -> None:
    server = start_server("--retention-raw", "36h")
    now = time.time_ns()
    with grpc.insecure_channel(server.grpc) as channel:
        response = export(server, metrics_service_pb2_grpc.MetricsServiceStub(channel),
                          every_kind("named", [now - 37 * 3600 * 10**9, now]), "grpc")
    assert response.partial_success.error_message == (
        "5 points older than retention_raw (36h) were not stored")


# -- the stock Python SDK replaying old points -----------------------------------------------------


def sdk_metrics(name: str, times: list[int]) -> MetricsData:
    """What an SDK exporter is handed when it replays buffered or backfilled points."""
    resource = Resource.create({"service.name": "replay"})
    scope = InstrumentationScope("otel_hms.tests.old_points")
    counter = Metric(name=f"{name}.count", description="", unit="1", data=Sum(
        data_points=[NumberDataPoint({"k": "v"}, times[0] - 10**9, t, i + 1)
                     for i, t in enumerate(times)],
        aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True))
    gauge = Metric(name=f"{name}.level", description="", unit="1", data=Gauge(
        data_points=[NumberDataPoint({"k": "v"}, 0, t, 0.5) for t in times]))
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, [counter, gauge], "")],
                                        "")])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_replay_stores_the_young_points_and_reports_the_old(
        server: ServerProcess, protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    now = time.time_ns()
    times = [now - 45 * DAY, now - 31 * DAY, now - 29 * DAY, now]
    name = f"replay.{protocol}"
    exporter = (GrpcMetricExporter(endpoint=server.grpc, insecure=True, timeout=10)
                if protocol == "grpc" else HttpMetricExporter(endpoint=server.http_url, timeout=10))
    try:
        # partial_success is not a failed export: the SDK does not retry it
        assert exporter.export(sdk_metrics(name, times)) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert server.sql(f"SELECT MetricName, TimeUnixNano, Value FROM otel_metrics_sum "
                      f"WHERE MetricName LIKE '{name}.%' UNION ALL "
                      f"SELECT MetricName, TimeUnixNano, Value FROM otel_metrics_gauge "
                      f"WHERE MetricName LIKE '{name}.%' ORDER BY ALL") == [
        {"MetricName": f"{name}.count", "TimeUnixNano": times[2], "Value": 3.0},
        {"MetricName": f"{name}.count", "TimeUnixNano": times[3], "Value": 4.0},
        {"MetricName": f"{name}.level", "TimeUnixNano": times[2], "Value": 0.5},
        {"MetricName": f"{name}.level", "TimeUnixNano": times[3], "Value": 0.5}]
    ingest = status(server)["ingest"]
    assert ingest["rejected_points"] == {"retention_raw": 4}
    sender = ingest["last_rejected"]["retention_raw"]["sender"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+ \(OTel-OTLP-Exporter-Python/[\d.]+.*\)", sender), \
        sender
    logged = wait_until(lambda: [w for w in warnings_in_log(server) if "rejected" in w],
                        message="the WARNING")
    assert logged[0].endswith(f"from {sender}: rejected 4 data points: 4 points older than "
                              "retention_raw (30d) were not stored")

