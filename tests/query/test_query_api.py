"""The query API of a running ``otel-hms serve``: the helpers' answers as JSON, the SQL sandbox,
the metrics list, the live stream, and queries while ingest goes on."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from conftest import ServerProcess, wait_until
from metric_builders import (
    DELTA,
    T0_S,
    exp_metric,
    exp_point,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    sum_metric,
)

A, B, C, D = ({"route": r, "env": "prod"} for r in ("/a", "/b", "/c", "/d"))
END = T0_S + 55  # the helpers' tests' window: [T0+5 s, T0+55 s)


def get(server: ServerProcess, path: str, **params: Any) -> tuple[int, Any]:
    url = f"http://{server.api}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def sql_error(server: ServerProcess, query: str) -> tuple[int, str]:
    r = urllib.request.Request(f"http://{server.api}/api/v1/sql",
                               data=json.dumps({"sql": query}).encode(), method="POST",
                               headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=30) as reply:
            return reply.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, str(json.load(exc)["error"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("query-api")
    s = ServerProcess(tmp / "store.duckdb", ["--sql-row-limit", "5"], {}, tmp / "serve.log")
    try:
        s.wait_ready()
        s.export(request(sum_metric("jobs", [
            number_point(A, 0, 10, start=-3600), number_point(A, 10, 15, start=-3600),
            number_point(A, 20, 15, start=-3600), number_point(A, 30, 22, start=-3600),
            number_point(A, 40, 3, start=35), number_point(A, 50, 8, start=35),
            number_point(A, 50, 8, start=35),
            number_point(C, 15, 4, start=12), number_point(C, 25, 9, start=12),
            number_point(D, 0, 1.0, start=-3600), number_point(D, 10, math.nan, start=-3600),
            number_point(D, 20, 3.0, start=-3600)])))
        s.export(request(sum_metric("jobs", [
            number_point(B, 10, 4, start=0), number_point(B, 20, 6, start=10)],
            temporality=DELTA)))
        bounds = [1.0, 2.0, 5.0]
        s.export(request(histogram_metric("latency", [
            histogram_point(A, 0, bounds, [1, 1, 0, 0]),
            histogram_point(A, 10, bounds, [3, 2, 1, 0]),
            histogram_point(A, 20, bounds, [3, 4, 1, 2])])))
        s.export(request(histogram_metric("latency", [
            histogram_point(B, 10, bounds, [0, 0, 4, 0], start=0)], temporality=DELTA)))
        s.export(request(exp_metric("exp.latency", [
            exp_point(A, 0, scale=1, offset=0, counts=[1]),
            exp_point(A, 10, scale=0, offset=0, counts=[3, 2], zero_count=1)])))
        temperature = gauge_metric("temperature", [
            number_point({"host": "a"}, 0, 1), number_point({"host": "a"}, 10, 3),
            number_point({"host": "a"}, 20, 5.0), number_point({"host": "a"}, 40, 7),
            number_point({"host": "b"}, 10, 10)])
        temperature.unit = "Cel"
        temperature.description = "room temperature"
        s.export(request(temperature))
        yield s
    finally:
        s.kill()


def points_by(body: dict[str, Any], key: str) -> dict[str, list[list[float | None]]]:
    return {e["labels"].get(key): e["points"] for e in body["series"]}


def test_rate_per_series(server: ServerProcess) -> None:
    status, body = get(server, "/api/v1/query", metric="jobs", range="50s", step="50s",
                       end=END, agg="rate")
    assert status == 200, body
    assert (body["kind"], body["agg"], body["step_ms"], body["source"]) == (
        "sum", "rate", 50_000, "raw")
    t = (T0_S + 5) * 1000
    assert points_by(body, "route") == {"/a": [[t, 0.4]], "/b": [[t, 0.2]], "/c": [[t, 0.18]],
                                        "/d": [[t, 0.04]]}
    assert body["series"][0]["labels"] == {"env": "prod", "route": "/a", "service.name": "svc"}


def test_counter_default_agg_is_rate_grouped_and_filtered(server: ServerProcess) -> None:
    status, body = get(server, "/api/v1/query", metric="jobs", range="50s", step="25s",
                       end=END, by="env", where="route=/a")
    assert status == 200, body
    assert body["agg"] == "rate"
    assert body["series"] == [{"labels": {"env": "prod"},
                               "points": [[(T0_S + 5) * 1000, 0.2], [(T0_S + 30) * 1000, 0.6]]}]
    status, body = get(server, "/api/v1/query", metric="jobs", range="50s", step="50s",
                       end=END, agg="increase", by="env")
    assert body["series"] == [{"labels": {"env": "prod"}, "points": [[(T0_S + 5) * 1000, 41.0]]}]


def test_histogram_quantiles(server: ServerProcess) -> None:
    status, body = get(server, "/api/v1/query", metric="latency", range="50s", step="50s",
                       end=END)
    assert (status, body["agg"]) == (200, "p99")
    t = (T0_S + 5) * 1000
    assert points_by(body, "route") == {"/a": [[t, 5.0]], "/b": [[t, 4.97]]}
    _, body = get(server, "/api/v1/query", metric="latency", range="50s", step="50s", end=END,
                  agg="p75", by="env")
    assert [[p[0], round(p[1], 9)] for p in body["series"][0]["points"]] == [[t, 4.4]]
    _, body = get(server, "/api/v1/query", metric="exp.latency", range="50s", step="50s",
                  end=END, agg="p50")
    assert points_by(body, "route") == {"/a": [[t, 1.75]]}


def test_gauge_aggregations(server: ServerProcess) -> None:
    expected = {"avg": [2.0, 5.0, 7.0], "max": [3.0, 5.0, 7.0], "min": [1.0, 5.0, 7.0],
                "sum": [4.0, 5.0, 7.0], "count": [2.0, 1.0, 1.0], "last": [3.0, 5.0, 7.0]}
    for agg, values in expected.items():
        status, body = get(server, "/api/v1/query", metric="temperature", range="60s",
                           step="20s", end=T0_S + 60, agg=agg, where="host=a")
        assert status == 200, body
        assert body["series"] == [{
            "labels": {"host": "a", "service.name": "svc"},
            "points": [[(T0_S + 20 * i) * 1000, v] for i, v in enumerate(values)]}]


def test_durations_take_the_rules_grammar(server: ServerProcess) -> None:
    status, body = get(server, "/api/v1/query", metric="temperature", range="1m30s",
                       step="45s", end=T0_S + 60, agg="count")
    assert status == 200, body
    assert (body["end_ms"] - body["start_ms"], body["step_ms"]) == (90_000, 45_000)


@pytest.mark.parametrize("params,status,message", [
    ({}, 400, "metric is required"),
    ({"metric": "nope"}, 404, "no metric named 'nope'"),
    ({"metric": "jobs", "range": "5 minutes"}, 400, "range='5 minutes' is not a duration"),
    ({"metric": "jobs", "agg": "median"}, 400, "agg='median' is not known"),
    ({"metric": "jobs", "agg": "p99"}, 400, "agg=p99 needs a histogram"),
    ({"metric": "latency", "agg": "avg"}, 400, "needs a gauge or sum"),
    ({"metric": "temperature", "agg": "rate"}, 400, "needs a sum (counter)"),
    ({"metric": "jobs", "where": "route"}, 400, "where='route' must be attribute=value"),
    ({"metric": "jobs", "range": "30d", "step": "1s"}, 400, "use a larger step"),
    ({"metric": "jobs", "end": "yesterday"}, 400, "end='yesterday' is not a time"),
])
def test_bad_query_parameters(server: ServerProcess, params: dict[str, str], status: int,
                              message: str) -> None:
    got, body = get(server, "/api/v1/query", **params)
    assert got == status
    assert message in body["error"]


def test_metrics_list(server: ServerProcess) -> None:
    status, body = get(server, "/api/v1/metrics")
    assert status == 200
    by_name = {(m["name"], m["kind"]): m for m in body["metrics"]}
    assert set(by_name) == {("jobs", "sum"), ("latency", "histogram"),
                            ("exp.latency", "exponential_histogram"), ("temperature", "gauge")}
    assert by_name[("temperature", "gauge")] == {
        "name": "temperature", "kind": "gauge", "unit": "Cel",
        "description": "room temperature", "temporality": None, "monotonic": None,
        "series": 2, "first_seen": "2026-01-01T00:00:00+00:00",
        "last_seen": "2026-01-01T00:00:40+00:00"}
    jobs = by_name[("jobs", "sum")]
    assert (jobs["series"], jobs["monotonic"]) == (4, True)
    assert jobs["temporality"] in ("cumulative", "delta")


def test_openapi_document(server: ServerProcess) -> None:
    status, doc = get(server, "/api/v1/openapi.json")
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    assert {"/api/v1/query", "/api/v1/metrics", "/api/v1/stream", "/api/v1/sql",
            "/api/v1/export"} <= set(doc["paths"])


def test_long_ranges_come_from_rollups(tmp_path: Path) -> None:
    # The points are older than 2 days, which a store keeping raw points 2 days refuses: they
    # go into one that keeps them forever, which is then served with the shorter retention.
    args = ["--rollup-interval-seconds", "0.2", "--rollup-delay", "0", "--retention-1m",
            "forever"]
    first = ServerProcess(tmp_path / "r.duckdb", args, {}, tmp_path / "serve-0.log")
    try:
        first.wait_ready()
        day = 86400
        first.export(request(gauge_metric("load", [
            number_point({"host": h}, t, float((t // 600) % 6) + (h == "b"))
            for h in ("a", "b") for t in range(0, 8 * day, 600)])))
        first.export(request(sum_metric("served", [
            number_point({"host": "a"}, t, t // 60, start=-60)
            for t in range(0, 8 * day, 600)])))
        wait_until(lambda: get(first, "/api/v1/status")[1]["rollups"]["watermarks"]["1h"],
                   message="hourly roll-ups")
    finally:
        assert first.stop() == 0
    s = ServerProcess(tmp_path / "r.duckdb", [*args, "--retention-raw", "2d"], {},
                      tmp_path / "serve-1.log")
    try:
        s.wait_ready()
        # Raw points older than 2 days are gone once rolled up; the roll-ups still answer
        # (once the pass that deleted them has published its watermarks).
        wait_until(lambda: s.scalar("SELECT count(*) FROM points_gauge") == 0,
                   message="raw retention")
        wait_until(lambda: get(s, "/api/v1/status")[1]["rollups"]["watermarks"].get("1h"),
                   message="the watermarks of the pass")
        end = T0_S + 8 * day
        status, body = get(s, "/api/v1/query", metric="load", range="7d", step="1d", end=end,
                           agg="avg", by="host")
        assert (status, body["source"]) == (200, "1h")
        assert [p[1] for p in body["series"][0]["points"]] == [2.5] * 7
        assert [p[1] for p in body["series"][1]["points"]] == [3.5] * 7
        _, body = get(s, "/api/v1/query", metric="served", range="7d", step="1d", end=end,
                      agg="increase")
        assert body["source"] == "1h"
        assert [p[1] for p in body["series"][0]["points"]] == [1440.0] * 7
        _, body = get(s, "/api/v1/query", metric="load", range="1h", step="10m",
                      end=T0_S + 3600, agg="max", where="host=a")
        assert (body["source"], [p[1] for p in body["series"][0]["points"]]) == (
            "1m", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    finally:
        s.kill()


# -- the SQL sandbox -------------------------------------------------------------------------------

@pytest.mark.parametrize("query,message", [
    ("SELECT * FROM read_csv('/etc/passwd')", "reads files on the server's machine"),
    ("SELECT * FROM read_text('/etc/hostname')", "reads files on the server's machine"),
    ("SELECT * FROM glob('/etc/*')", "reads files on the server's machine"),
    ("SELECT * FROM read_parquet('http://127.0.0.1:1/x.parquet')",
     "reads files on the server's machine"),
    ("COPY series TO '/tmp/otel-hms-leak.csv'", "only read-only SELECT"),
    ("ATTACH '/tmp/otel-hms-other.duckdb' AS other", "only read-only SELECT"),
    ("INSTALL httpfs", "only read-only SELECT"),
    ("LOAD httpfs", "only read-only SELECT"),
    ("SET enable_external_access = true", "only read-only SELECT"),
    ("SET VARIABLE x = 1", "only read-only SELECT"),
    ("PRAGMA enable_profiling", "only read-only SELECT"),
    ("DELETE FROM points_sum", "only read-only SELECT"),
    ("INSERT INTO otel_hms_meta VALUES ('a', 'b')", "only read-only SELECT"),
    ("CREATE TABLE t AS SELECT 1", "only read-only SELECT"),
    ("DROP VIEW otel_metrics_sum", "only read-only SELECT"),
    ("CHECKPOINT", "only read-only SELECT"),
    ("SELECT 1; DELETE FROM series", "exactly one statement"),
    ("CALL pragma_version()", "only read-only SELECT"),
    ("EXPORT DATABASE '/tmp/otel-hms-export'", "only read-only SELECT"),
])
def test_sql_sandbox_refuses(server: ServerProcess, query: str, message: str) -> None:
    status, error = sql_error(server, query)
    assert status == 400
    assert message in error
    assert server.scalar("SELECT count(*) FROM points_sum") == 14
    assert not Path("/tmp/otel-hms-leak.csv").exists()


def test_sql_row_limit_and_helpers(server: ServerProcess) -> None:
    result = server.sql_result("SELECT * FROM range(10)")
    assert (len(result["rows"]), result["truncated"]) == (5, True)
    rows = server.sql("SELECT Labels['route'] AS route, Value FROM increase('jobs', "
                      "INTERVAL 50 SECOND, until := TIMESTAMPTZ '2026-01-01 00:00:55+00') "
                      "ORDER BY route")
    assert rows == [{"route": "/a", "Value": 20.0}, {"route": "/b", "Value": 10.0},
                    {"route": "/c", "Value": 9.0}, {"route": "/d", "Value": 2.0}]


def test_sql_time_limit(tmp_path: Path) -> None:
    s = ServerProcess(tmp_path / "t.duckdb", ["--sql-timeout-seconds", "0.5"], {},
                      tmp_path / "serve.log")
    try:
        s.wait_ready()
        status, error = sql_error(s, "SELECT count(*) FROM range(10000000000) a")
        assert status == 400
        assert "time limit of 0.5 s" in error
    finally:
        s.kill()


# -- live stream and concurrent ingest -------------------------------------------------------------

def now_point(value: float, host: str = "live") -> metrics_pb2.Metric:
    ns = time.time_ns()
    return metrics_pb2.Metric(name="live.gauge", gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=ns, as_double=value,
                                    attributes=number_point({"host": host}, 0, 0).attributes)]))


def test_stream_pushes_new_points(server: ServerProcess) -> None:
    server.export(request(now_point(5.0)))
    url = (f"http://{server.api}/api/v1/stream?metric=live.gauge&agg=max&range=10m&step=10m")
    events: list[dict[str, Any]] = []
    done = threading.Event()

    def read() -> None:
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            name = None
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "points":
                    events.append(json.loads(line[6:]))
                if done.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until(lambda: events, message="the first event")
    first = [p[1] for e in events for s in e["series"] for p in s["points"]]
    assert first == [5.0]
    server.export(request(now_point(9.0)))
    wait_until(lambda: any(p[1] == 9.0 for e in events for s in e["series"]
                           for p in s["points"]), message="the updated max")
    done.set()
    server.export(request(now_point(1.0)))  # wakes the reader to end
    reader.join(10)


def test_queries_while_ingest_continues(server: ServerProcess) -> None:
    stop = threading.Event()
    sent = 0

    def ingest() -> None:
        nonlocal sent
        while not stop.is_set():
            server.export(request(gauge_metric("busy", [
                number_point({"i": str(i)}, 100 + sent, float(i)) for i in range(200)])))
            sent += 1

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        answers = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline or answers < 5:
            status, body = get(server, "/api/v1/query", metric="temperature", range="60s",
                               step="20s", end=T0_S + 60, agg="avg", where="host=a")
            assert status == 200
            assert [p[1] for p in body["series"][0]["points"]] == [2.0, 5.0, 7.0]
            answers += 1
    finally:
        stop.set()
        writer.join(30)
    assert sent > 0
    assert server.scalar("SELECT count(*) FROM otel_metrics_gauge "
                         "WHERE MetricName = 'busy'") == 200 * sent


def test_ungrouped_series_are_told_apart(tmp_path: Path) -> None:
    """Replicas get service.instance.id; look-alikes without one, what their resources
    differ in; a grouped answer keeps only the group keys."""
    s = ServerProcess(tmp_path / "replicas.duckdb", [], {}, tmp_path / "serve.log")
    try:
        s.wait_ready()
        for value, resource in ((10, {"service.instance.id": "i-1", "host.name": "h1"}),
                                (20, {"service.instance.id": "i-2", "host.name": "h1"}),
                                (30, {"host.name": "h2", "cloud.region": "eu"}),
                                (40, {"host.name": "h3", "cloud.region": "eu"})):
            s.export(request(sum_metric("served", [
                number_point(A, 10, 0, start=0), number_point(A, 20, value, start=0)]),
                resource=resource))
        status, body = get(s, "/api/v1/query", metric="served", range="50s", step="50s",
                           end=END, agg="increase")
        assert status == 200, body
        t = (T0_S + 5) * 1000
        assert body["series"] == [
            {"labels": {"env": "prod", "host.name": "h2", "route": "/a",
                        "service.name": "svc"}, "points": [[t, 30.0]]},
            {"labels": {"env": "prod", "host.name": "h3", "route": "/a",
                        "service.name": "svc"}, "points": [[t, 40.0]]},
            {"labels": {"env": "prod", "route": "/a", "service.instance.id": "i-1",
                        "service.name": "svc"}, "points": [[t, 10.0]]},
            {"labels": {"env": "prod", "route": "/a", "service.instance.id": "i-2",
                        "service.name": "svc"}, "points": [[t, 20.0]]}]
        status, body = get(s, "/api/v1/query", metric="served", range="50s", step="50s",
                           end=END, agg="increase", by="route")
        assert body["series"] == [{"labels": {"route": "/a"}, "points": [[t, 100.0]]}]
    finally:
        s.kill()
