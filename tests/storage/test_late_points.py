"""A point that arrives after its minute (and hour) was rolled up is folded into the roll-ups:
they end up exactly as if every point had come in time.

In process, two stores get the same points: one in time, one with some held back until the
roll-ups have passed them (gauges, cumulative and delta counters, explicit and exponential
histograms; the late points at minute and hour edges, so a counter's next increase changes
too).  After the next pass their roll-up tables are equal row for row, and the values read
as the data says.  Retention keeps the raw points a fold needs.  Against a real server, the
stock Python SDK's exporter and a hand-built OTLP/HTTP request send late points, and the
roll-ups take them in.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
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

from otel_hms.receiver.decode import Decoder
from otel_hms.storage import late_fold
from otel_hms.storage.late_points import LATE_TABLE
from otel_hms.storage.rollups import Maintenance, Retention
from otel_hms.storage.store import known_series_ids, open_store
from otel_hms.storage.writer import Writer

from conftest import StartServer, wait_until
from metric_builders import (
    DELTA,
    at,
    exp_metric,
    exp_point,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    sum_metric,
)

HOURS = 3
STEP = 20  # seconds between points
ROLLUPS = ("rollup_1m_number", "rollup_1m_histograms", "rollup_1h_number",
           "rollup_1h_histograms")
KEEP_ALL = Retention(raw=None, minute=None, hour=None)


def moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at(seconds) / 1e9, dt.UTC)


class Store:
    """The writer, decoder and roll-up pass of ``otel-hms serve``, sharing the horizon."""

    def __init__(self, path: Path, retention: Retention = KEEP_ALL) -> None:
        self.con = open_store(str(path))
        self.writer = Writer(self.con, known_series_ids(self.con))
        self.decoder = Decoder(known=self.writer.known)
        self.maintenance = Maintenance(self.con, retention, delay=dt.timedelta(minutes=2),
                                       horizon=self.writer.horizon)

    def send(self, req: ExportMetricsServiceRequest) -> None:
        batch = self.decoder.decode(req)
        assert batch.rejected == 0, batch.error_message
        self.writer.submit(batch).result(10)

    def pass_at(self, seconds: float) -> None:
        self.maintenance.run_once(moment(seconds))

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def rollups(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every roll-up row, with its metric's name instead of the series id."""
        return {table: self.rows(f"SELECT s.metric_name, r.* EXCLUDE (series_id) FROM {table} "
                                 "r JOIN series s USING (series_id) ORDER BY ALL")
                for table in ROLLUPS}

    def minute(self, metric: str, seconds: float, table: str = "rollup_1m_number",
               columns: str = "count, sum, min, max, last, increase") -> list[tuple[Any, ...]]:
        return self.rows(f"SELECT {columns} FROM {table} JOIN series s USING (series_id) "
                         "WHERE s.metric_name = ? AND time = ?", [metric, moment(seconds)])

    def close(self) -> None:
        self.maintenance.cur.close()
        self.writer.close()
        self.con.close()


def every_kind(times: list[int]) -> ExportMetricsServiceRequest:
    """Points of five metrics at ``times`` (seconds after T0), values set by the time."""
    def k(t: int) -> int:
        return t // STEP + 1
    attrs = {"host": "a"}
    return request(
        gauge_metric("load", [number_point(attrs, t, float(k(t) % 17)) for t in times]),
        sum_metric("done", [number_point(attrs, t, 3 * k(t), start=-60) for t in times]),
        sum_metric("done.delta", [number_point(attrs, t, k(t) % 3, start=t - STEP)
                                  for t in times], temporality=DELTA),
        histogram_metric("wait", [histogram_point(attrs, t, [1.0, 2.0],
                                                  [k(t), 2 * k(t), k(t) % 5]) for t in times]),
        exp_metric("wait.exp", [exp_point(attrs, t, scale=0, offset=0, counts=[k(t), k(t)])
                                for t in times]),
    )


ALL_TIMES = list(range(0, HOURS * 3600, STEP))
# At minute and hour edges: the last point of minute 20 (the counter's next point opens
# minute 21), the last of minute 39, two in one minute, the last point of hour 1 (its next
# point opens hour 2), the first point of hour 2, and one in the middle of hour 2.
LATE = [1240, 2380, 3000, 3020, 7180, 7200, 9000]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """(in time, late): both rolled up; ``late`` has not got the ``LATE`` points yet."""
    on_time, late = Store(tmp_path / "on_time.duckdb"), Store(tmp_path / "late.duckdb")
    on_time.send(every_kind(ALL_TIMES))
    late.send(every_kind([t for t in ALL_TIMES if t not in LATE]))
    for s in (on_time, late):
        s.pass_at(HOURS * 3600 + 300)  # every minute and hour rolled up
    yield on_time, late
    on_time.close()
    late.close()


@pytest.mark.parametrize("slice_minutes", [360, 20])
def test_late_points_make_the_rollups_they_would_have_made_in_time(
        stores: tuple[Store, Store], slice_minutes: int, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """With 20-minute fold slices, 2380 is the last point of the slice from 20:00: the
    counters' and histograms' next point (40:00) is recomputed by the next slice."""
    monkeypatch.setattr(late_fold, "SLICE", dt.timedelta(minutes=slice_minutes))
    on_time, late = stores
    assert late.rollups() != on_time.rollups()
    late.send(every_kind(LATE))
    # every kind but summaries (not rolled up), one mark per metric and minute
    assert late.writer.stats.late_points == 5 * len(LATE)
    assert late.rows(f"SELECT count(DISTINCT (series_id, minute)) FROM {LATE_TABLE}") == [
        (5 * (len(LATE) - 1),)]
    late.pass_at(HOURS * 3600 + 330)
    assert late.rollups() == on_time.rollups()
    assert late.rows(f"SELECT count(*) FROM {LATE_TABLE}") == [(0,)]
    folded = late.maintenance.status()["late_minutes_folded"]
    # the late points' marks; with 20-minute slices also those of the next points (40:00)
    # of the four counters and histograms after the last point of the slice from 20:00
    assert folded == 5 * (len(LATE) - 1) + (0 if slice_minutes == 360 else 4)


def test_the_folded_values_read_as_the_data_says(stores: tuple[Store, Store]) -> None:
    """Point ``t`` has k = t / 20 + 1: the gauge reads k % 17, the counter 3k."""
    _, late = stores

    def done() -> list[list[tuple[Any, ...]]]:
        """The counter's minutes 20 and 21 and its hours 0, 1, 2."""
        return [late.minute("done", 1200), late.minute("done", 1260),
                *(late.minute("done", h, "rollup_1h_number", "count, increase")
                  for h in (0, 3600, 7200))]

    # minute 20 without its last point (1240): 1200 and 1220, rising 3 each; minute 21's
    # first point (1260) rises 6 from 1220.  Hours: 4, 1 and 2 points missing; hour 2's
    # baseline is 7160 (1077) instead of 7180 (1080).
    assert done() == [[(2, 369.0, 183.0, 186.0, 186.0, 6.0)],
                      [(3, 585.0, 192.0, 198.0, 198.0, 12.0)],
                      [(176, 537.0)], [(179, 537.0)], [(178, 543.0)]]
    assert late.minute("load", 1200) == [(2, 21.0, 10.0, 11.0, 11.0, None)]
    assert late.minute("done.delta", 1200, columns="count, increase") == [(2, 3.0)]
    assert late.minute("wait", 1200, "rollup_1m_histograms", "upper, n") == [
        ([1.0, 2.0, float("inf")], [2.0, 4.0, 2.0])]

    late.send(every_kind(LATE))
    late.pass_at(HOURS * 3600 + 330)
    # 1240 (k = 63, 189) back in minute 20; minute 21 rises 3 from it; each hour counts
    # 180 points, from 3 (t = 0, no baseline) to 540, 540 to 1080, 1080 to 1620
    assert done() == [[(3, 558.0, 183.0, 189.0, 189.0, 9.0)],
                      [(3, 585.0, 192.0, 198.0, 198.0, 9.0)],
                      [(180, 537.0)], [(180, 540.0)], [(180, 540.0)]]
    assert late.minute("load", 1200) == [(3, 33.0, 10.0, 12.0, 12.0, None)]
    assert late.minute("done.delta", 1200, columns="count, increase") == [(3, 3.0)]
    # buckets [k, 2k, k % 5] from k = 60: three steps of [1, 2, 1]
    assert late.minute("wait", 1200, "rollup_1m_histograms", "upper, n") == [
        ([1.0, 2.0, float("inf")], [3.0, 6.0, 3.0])]


def test_raw_retention_spares_the_hour_of_a_point_not_folded_yet(tmp_path: Path) -> None:
    s = Store(tmp_path / "retention.duckdb",
              Retention(raw=dt.timedelta(hours=1, minutes=30), minute=None, hour=None))
    try:
        s.send(every_kind([t for t in ALL_TIMES if t != 4000]))
        s.pass_at(HOURS * 3600)  # raw before 1:30, in whole hours: before 1:00
        assert s.rows("SELECT min(time_unix_nano) FROM points_gauge") == [(at(3600),)]
        s.send(every_kind([4000]))  # late, in hour 1
        # A retention pass that comes before the fold (as one may, while the fold is
        # stopped) keeps hour 1, which the fold recomputes, though 1:30 is past.
        s.maintenance._apply_retention(moment(HOURS * 3600 + 3600))
        assert s.rows("SELECT min(time_unix_nano) FROM points_gauge") == [(at(3600),)]
        s.pass_at(HOURS * 3600 + 3600)  # folds, then deletes hour 1
        assert s.minute("load", 0 + 3600, "rollup_1h_number", "count") == [(180,)]
        assert s.rows("SELECT min(time_unix_nano) FROM points_gauge") == [(at(7200),)]
    finally:
        s.close()


def test_hours_whose_minutes_retention_took_are_recomputed_whole(tmp_path: Path) -> None:
    retention = Retention(raw=None, minute=dt.timedelta(minutes=30), hour=None)
    on_time, late = (Store(tmp_path / "on_time.duckdb", retention),
                     Store(tmp_path / "late.duckdb", retention))
    try:
        on_time.send(every_kind(ALL_TIMES))
        late.send(every_kind([t for t in ALL_TIMES if t not in LATE]))
        for s in (on_time, late):
            s.pass_at(HOURS * 3600 + 300)
        # minute rows older than 30 minutes (2:35) are gone, hours 0 and 1 with them
        assert late.rows("SELECT min(time) FROM rollup_1m_number") == [(moment(9300),)]
        late.send(every_kind(LATE))
        late.pass_at(HOURS * 3600 + 300)
        assert late.rollups() == on_time.rollups()
    finally:
        on_time.close()
        late.close()


def test_points_in_time_are_not_marked(tmp_path: Path) -> None:
    s = Store(tmp_path / "in_time.duckdb")
    try:
        s.send(every_kind(list(range(0, 600, STEP))))
        s.pass_at(600)  # minutes before 8:00 rolled up
        s.send(every_kind([480, 500]))  # minute 8, not rolled up yet
        assert s.writer.stats.late_points == 0
        assert s.rows(f"SELECT count(*) FROM {LATE_TABLE}") == [(0,)]
        s.send(every_kind([460]))  # minute 7 was
        assert s.writer.stats.late_points == 5  # one per metric
    finally:
        s.close()


# -- a real server ---------------------------------------------------------------------------------


def status(api: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{api}/api/v1/status", timeout=10) as reply:
        found: dict[str, Any] = json.load(reply)
        return found


def sdk_counter(name: str, start: int, points: list[tuple[int, int]],
                buckets: list[tuple[int, list[int]]]) -> MetricsData:
    """A cumulative counter and histogram as an SDK exporter is handed them."""
    counter = Metric(name=name, description="", unit="1", data=Sum(
        data_points=[NumberDataPoint({"k": "v"}, start, t, v) for t, v in points],
        aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True))
    histogram = Metric(name=f"{name}.latency", description="", unit="s", data=Histogram(
        data_points=[HistogramDataPoint({"k": "v"}, start, t, count=sum(c), sum=float(sum(c)),
                                        bucket_counts=c, explicit_bounds=[0.5], min=0.1,
                                        max=1.0) for t, c in buckets],
        aggregation_temporality=AggregationTemporality.CUMULATIVE))
    return MetricsData([ResourceMetrics(
        Resource.create({"service.name": "late"}),
        [ScopeMetrics(InstrumentationScope("otel_hms.tests.late_points"), [counter, histogram],
                      "")], "")])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_folds_late_sdk_points_into_rolled_minutes_and_hours(
        start_server: StartServer, protocol: str) -> None:
    server = start_server("--rollup-delay", "1m", "--rollup-interval-seconds", "0.2")
    exporter = (GrpcMetricExporter(endpoint=server.grpc, insecure=True, timeout=10)
                if protocol == "grpc" else HttpMetricExporter(endpoint=server.http_url, timeout=10))
    # Two hours ago, a point every 20 s for 20 minutes, 2 s into each third: point i at
    # minute i // 3.  Point 11 (3:42, value 110), the last of minute 3, is held back; the
    # counter's next point (4:02) measures from it.
    hour = (time.time_ns() // 3_600_000_000_000 - 2) * 3_600_000_000_000
    times = [hour + (2 + 20 * i) * 10**9 for i in range(60)]
    held = 11
    name = f"late.{protocol}"
    minute = f"make_timestamptz({(hour + 180 * 10**9) // 1000})"
    numbers = (f"SELECT r.time = {minute} AS minute_3, count, sum, increase "
               f"FROM rollup_1m_number r JOIN series s USING (series_id) "
               f"WHERE s.metric_name = '{name}' AND r.time >= {minute} ORDER BY r.time LIMIT 2")
    hourly = (f"SELECT count, increase FROM rollup_1h_number r JOIN series s USING (series_id) "
              f"WHERE s.metric_name = '{name}' AND r.time = make_timestamptz({hour // 1000})")
    buckets = (f"SELECT upper, n FROM rollup_1m_histograms r JOIN series s USING (series_id) "
               f"WHERE s.metric_name = '{name}.latency' AND r.time = {minute}")
    try:
        assert exporter.export(sdk_counter(
            name, hour, [(t, 10 * i) for i, t in enumerate(times) if i != held],
            [(t, [i, i]) for i, t in enumerate(times) if i != held])) \
            is MetricExportResult.SUCCESS
        wait_until(lambda: (status(server.api)["rollups"]["watermarks"].get("1h") or "")
                   >= dt.datetime.fromtimestamp(hour / 1e9 + 3600, dt.UTC).isoformat(),
                   message="the hour rolled up")
        # minute 3: points 9 and 10; minute 4 (points 12-14) rises 20 from point 10
        assert server.sql(numbers) == [
            {"minute_3": True, "count": 2, "sum": 190.0, "increase": 20.0},
            {"minute_3": False, "count": 3, "sum": 390.0, "increase": 40.0}]
        # the start time is the hour's: the first point counts whole (0), then 59 steps
        assert server.sql(hourly) == [{"count": 59, "increase": 590.0}]
        assert server.sql(buckets) == [{"upper": [0.5, "Infinity"], "n": [2.0, 2.0]}]
        # Two hours old, the points came after the server had rolled up past them: late
        # too, all 59 of both metrics, folded from their marks (20 minutes of each).
        wait_until(lambda: status(server.api)["rollups"]["late_minutes_folded"] == 40,
                   message="the first points folded in")
        assert status(server.api)["writer"]["late_points"] == 118

        assert exporter.export(sdk_counter(name, hour, [(times[held], 10 * held)],
                                           [(times[held], [held, held])])) \
            is MetricExportResult.SUCCESS
        wait_until(lambda: status(server.api)["rollups"]["late_minutes_folded"] == 40 + 2,
                   message="the late point folded in")
        assert server.sql(numbers) == [
            {"minute_3": True, "count": 3, "sum": 300.0, "increase": 30.0},
            {"minute_3": False, "count": 3, "sum": 390.0, "increase": 30.0}]
        assert server.sql(hourly) == [{"count": 60, "increase": 590.0}]
        assert server.sql(buckets) == [{"upper": [0.5, "Infinity"], "n": [3.0, 3.0]}]
        assert server.scalar(f"SELECT count(*) FROM {LATE_TABLE}") == 0
        current = status(server.api)
        assert current["writer"]["late_points"] == 118 + 2
        assert current["rollups"]["late_minutes_folded"] == 40 + 2
    finally:
        exporter.shutdown()
