"""``DuckDBMetricExporter``: SDK metrics into a store file in process, row for row as over OTLP.

The same ``MetricsData`` (every instrument kind, both temporalities, two collections) is
exported twice: through the embedded exporter into one file, and through the stock OTLP/gRPC
exporter into ``otel-hms serve`` on another.  Every view must then hold the same rows.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from otel_hms import DuckDBMetricExporter
from otel_hms.storage import StoreLocked

from conftest import StartServer

DELTA, CUMULATIVE = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
KINDS = (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter,
         ObservableGauge)
# Columns that depend on when the row was written, not on what was sent.
VIEWS = {
    "otel_metrics_gauge": "*",
    "otel_metrics_sum": "*",
    "otel_metrics_histogram": "*",
    "otel_metrics_exp_histogram": "*",
    "otel_points": "*",
    "otel_series": "* EXCLUDE (FirstSeen)",
}


def collections(temporality: AggregationTemporality) -> list[MetricsData]:
    """Two collections of every instrument kind the SDK has."""
    reader = InMemoryMetricReader(preferred_temporality=dict.fromkeys(KINDS, temporality))
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "embedded-e2e", "deployment": "test"}),
        views=[View(instrument_name="request_latency_seconds",
                    aggregation=ExplicitBucketHistogramAggregation((0.5, 1.0, 2.0, 5.0))),
               View(instrument_name="payload_bytes",
                    aggregation=ExponentialBucketHistogramAggregation(max_size=20))])
    meter = provider.get_meter("otel_hms.tests.embedded", "2.0")
    requests = meter.create_counter("requests_processed_total")
    connections = meter.create_up_down_counter("active_connections")
    latency = meter.create_histogram("request_latency_seconds", unit="s")
    payload = meter.create_histogram("payload_bytes", unit="By")
    satisfaction = meter.create_gauge("satisfaction_score")
    readings = iter([[4.0, 7], [5.5, 9]])

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        gauge, _ = current = next(readings)
        observed.append(current)
        return [Observation(gauge, {"room": "a"})]

    observed: list[list[float]] = []
    meter.create_observable_gauge("temperature", [observe])
    meter.create_observable_counter(
        "cpu_seconds", [lambda o: [Observation(observed[-1][1] * 10, {"cpu": "0"})]])
    meter.create_observable_up_down_counter(
        "queue_depth", [lambda o: [Observation(-observed[-1][1])]])

    out = []
    for round_ in range(2):
        for route, seconds in [("/apply", 0.4), ("/apply", 1.3), ("/pay", 2.7)][round_:]:
            requests.add(1, {"route": route, "status": "ok"})
            latency.record(seconds, {"route": route})
        connections.add(3 - 5 * round_, {"route": "/apply"})
        for size in (0, 3, 100, 4096)[round_:]:
            payload.record(size)
        satisfaction.set(4.5 - round_, {"channel": "web"})
        data = reader.get_metrics_data()
        assert data is not None
        out.append(data)
    provider.shutdown()
    return out


def view_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {view: con.execute(f"SELECT {columns} FROM {view} ORDER BY SeriesId"
                                  + {"otel_series": "", "otel_points": ", TimeUnix"}.get(
                                      view, ", TimeUnixNano")
                                  ).fetchall()
                for view, columns in VIEWS.items()}
    finally:
        con.close()


@pytest.mark.parametrize("temporality", [CUMULATIVE, DELTA], ids=["cumulative", "delta"])
def test_same_rows_as_the_otlp_path(start_server: StartServer, tmp_path: Path,
                                    temporality: AggregationTemporality) -> None:
    data = collections(temporality)
    embedded = DuckDBMetricExporter(tmp_path / "embedded.duckdb")
    server = start_server(db=tmp_path / "served.duckdb")
    otlp = OTLPMetricExporter(endpoint=server.grpc, insecure=True)
    for batch in data:
        assert embedded.export(batch) is MetricExportResult.SUCCESS
        assert otlp.export(batch) is MetricExportResult.SUCCESS
    otlp.shutdown()
    embedded.shutdown()
    assert server.stop() == 0

    ours, theirs = view_rows(tmp_path / "embedded.duckdb"), view_rows(tmp_path / "served.duckdb")
    for view in VIEWS:
        assert ours[view] == theirs[view], view
    assert len(ours["otel_series"]) == 10
    assert len(ours["otel_points"]) == 2 * (3 + 1 + 1 + 1 + 1)


def test_values_through_the_views(tmp_path: Path) -> None:
    path = tmp_path / "metrics.duckdb"
    exporter = DuckDBMetricExporter(path)
    for batch in collections(DELTA):
        exporter.export(batch)

    assert exporter.sql("""
        SELECT Attributes['route'], Value, AggregationTemporality, IsMonotonic
        FROM otel_metrics_sum WHERE MetricName = 'requests_processed_total'
        ORDER BY TimeUnixNano, 1""") == [
        ("/apply", 2.0, 1, True), ("/pay", 1.0, 1, True),
        ("/apply", 1.0, 1, True), ("/pay", 1.0, 1, True)]
    # Up-down counters stay cumulative under the delta preference, as in the stock exporters.
    assert exporter.sql("""
        SELECT Value, AggregationTemporality, IsMonotonic FROM otel_metrics_sum
        WHERE MetricName = 'active_connections' ORDER BY TimeUnixNano""") == [
        (3.0, 1, False), (-2.0, 1, False)]
    assert exporter.sql("""
        SELECT MetricName, Value FROM otel_metrics_sum
        WHERE MetricName IN ('cpu_seconds', 'queue_depth') ORDER BY MetricName, TimeUnixNano
        """) == [("cpu_seconds", 70.0), ("cpu_seconds", 20.0),
                 ("queue_depth", -7.0), ("queue_depth", -2.0)]
    assert exporter.sql("""
        SELECT MetricName, Attributes, Value FROM otel_metrics_gauge
        ORDER BY MetricName, TimeUnixNano""") == [
        ("satisfaction_score", {"channel": "web"}, 4.5),
        ("satisfaction_score", {"channel": "web"}, 3.5),
        ("temperature", {"room": "a"}, 4.0), ("temperature", {"room": "a"}, 5.5)]
    assert exporter.sql("""
        SELECT Attributes['route'], Count, Sum, Min, Max, BucketCounts, ExplicitBounds
        FROM otel_metrics_histogram ORDER BY TimeUnixNano, 1""") == [
        ("/apply", 2, 1.7000000000000002, 0.4, 1.3, [1, 0, 1, 0, 0], [0.5, 1.0, 2.0, 5.0]),
        ("/pay", 1, 2.7, 2.7, 2.7, [0, 0, 0, 1, 0], [0.5, 1.0, 2.0, 5.0]),
        ("/apply", 1, 1.3, 1.3, 1.3, [0, 0, 1, 0, 0], [0.5, 1.0, 2.0, 5.0]),
        ("/pay", 1, 2.7, 2.7, 2.7, [0, 0, 0, 1, 0], [0.5, 1.0, 2.0, 5.0])]
    assert exporter.sql("""
        SELECT Count, Sum, Min, Max, ZeroCount, list_sum(PositiveBucketCounts)
        FROM otel_metrics_exp_histogram ORDER BY TimeUnixNano""") == [
        (4, 4199.0, 0.0, 4096.0, 1, 3), (3, 4199.0, 3.0, 4096.0, 0, 3)]
    # The SQL helpers see the embedded store like the server's.
    assert exporter.sql("""
        SELECT Labels['route'], Value FROM increase('requests_processed_total',
            INTERVAL 1 HOUR, group_by := ['route']) ORDER BY 1""") == [("/apply", 3.0),
                                                                       ("/pay", 2.0)]
    exporter.shutdown()
    exporter.shutdown()  # a second shutdown does nothing
    with pytest.raises(RuntimeError, match="is closed"):
        exporter.sql("SELECT 1")


def test_refuses_a_file_a_server_holds(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server()
    with pytest.raises(StoreLocked) as raised:
        DuckDBMetricExporter(server.db)
    assert str(raised.value) == (
        f"DuckDBMetricExporter: {server.db} is held by another otel-hms serve "
        f"(pid {server.proc.pid}): send to it with otel_hms.configure(endpoint=...) or export "
        "into another file")
    assert (raised.value.pid, raised.value.program) == (server.proc.pid, "otel-hms serve")


def test_one_exporter_per_file_in_a_process(tmp_path: Path) -> None:
    first = DuckDBMetricExporter(tmp_path / "metrics.duckdb")
    with pytest.raises(StoreLocked) as raised:
        DuckDBMetricExporter(f"{tmp_path}/./metrics.duckdb")
    assert str(raised.value) == (
        f"DuckDBMetricExporter: {tmp_path}/./metrics.duckdb is already open in this process; "
        "share that exporter (or its MeterProvider)")
    first.shutdown()
    DuckDBMetricExporter(tmp_path / "metrics.duckdb").shutdown()  # free again once shut down


SCRIPT = """\
import sys
import otel_hms

meter = otel_hms.configure("nightly-report", embedded=sys.argv[1], interval=3600)
processed = meter.create_counter("cases_resolved_total")
for team in ("permits", "permits", "appeals"):
    processed.add(1, {"team": team})
print(otel_hms.sql("SELECT Attributes['team'], Value FROM otel_metrics_sum ORDER BY 1"))
processed.add(5, {"team": "appeals"})  # exported by the flush at exit
"""


def test_configure_embedded_then_serve_the_file(start_server: StartServer,
                                                tmp_path: Path) -> None:
    path = tmp_path / "metrics.duckdb"
    script = tmp_path / "report.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('appeals', 1.0), ('permits', 2.0)]"
    assert done.stderr == ""

    server = start_server(db=path)  # the file the script wrote serves as any store
    assert server.sql("""
        SELECT ServiceName, Attributes['team'] AS team, max(Value) AS total
        FROM otel_metrics_sum GROUP BY ALL ORDER BY team""") == [
        {"ServiceName": "nightly-report", "team": "appeals", "total": 6.0},
        {"ServiceName": "nightly-report", "team": "permits", "total": 2.0}]
