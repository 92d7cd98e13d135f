"""The cardinality guard against a real ``otel-hms serve``: new series past ``max_series`` or
``max_series_per_metric`` are refused in ``partial_success`` with the limit named, points of
known series are still stored, the counts survive a restart, concurrent senders through
several decode workers cannot overshoot, and bounded series caches never store a series
twice; and the WARNING of refused points is rate-limited.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from otel_hms.receiver.decode import DecodedBatch
from otel_hms.receiver.ingest import RejectionLog

from conftest import ServerProcess, StartServer, wait_until
from otlp_requests import gauge_request

T = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
S = 10**9


def points(first: int, count: int, *times: int) -> list[tuple[dict[str, str], int, float]]:
    """Points of series ``id=first`` .. ``first+count-1`` at each of ``times``."""
    return [({"id": str(i)}, t, float(i)) for i in range(first, first + count) for t in times]


def union(*requests: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest:
    out = ExportMetricsServiceRequest()
    for r in requests:
        out.resource_metrics.extend(r.resource_metrics)
    return out


def refused(response: ExportMetricsServiceResponse) -> tuple[int, str]:
    return (response.partial_success.rejected_data_points,
            response.partial_success.error_message)


def status(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{server.api}/api/v1/status", timeout=10) as r:
        result: dict[str, Any] = json.load(r)
        return result


def stored(server: ServerProcess) -> dict[str, tuple[int, int]]:
    """Series and points per metric, and no point without its series."""
    assert server.scalar("SELECT count(*) FROM points_gauge WHERE series_id NOT IN "
                         "(SELECT series_id FROM series)") == 0
    assert server.scalar("SELECT count(*) - count(DISTINCT series_id) FROM series") == 0
    rows = server.sql("SELECT metric_name AS m, count(DISTINCT series_id) AS s, count(*) AS p "
                      "FROM points_gauge JOIN series USING (series_id) GROUP BY ALL ORDER BY m")
    return {r["m"]: (r["s"], r["p"]) for r in rows}


def warnings(server: ServerProcess) -> list[str]:
    return [line for line in server.log.read_text().splitlines()
            if "WARNING" in line and "rejected" in line]


@pytest.mark.parametrize("workers", ["1", "0"])
def test_new_series_past_the_limits_are_refused_and_known_ones_kept(
        start_server: StartServer, workers: str) -> None:
    server = start_server("--max-series", "20", "--max-series-per-metric", "10",
                          "--decode-workers", workers)
    assert not server.export(gauge_request("http.server.duration", points(0, 10, T)))\
        .HasField("partial_success")

    # 10 known series and 3 new ones (2 points each) of a metric at its limit
    answer = server.export(gauge_request("http.server.duration",
                                         points(0, 10, T + S) + points(10, 3, T + S, T + 2 * S)))
    assert refused(answer) == (6, "6 points of 3 new series refused: max_series_per_metric "
                                  "(10) reached for metric http.server.duration")
    assert stored(server) == {"http.server.duration": (10, 20)}

    # another metric fills max_series; then a third metric's new series are refused while
    # known series of the first two are stored in the same request
    assert not server.export(gauge_request("queue.depth", points(0, 10, T))) \
        .HasField("partial_success")
    answer = server.export(union(gauge_request("cpu.usage", points(0, 4, T)),
                                 gauge_request("queue.depth", points(0, 10, T + S)),
                                 gauge_request("http.server.duration", points(0, 10, T + 3 * S))))
    assert refused(answer) == (4, "4 points of 4 new series refused: max_series (20) reached")

    # the refused series again (their rows must come back through the decode worker)
    answer = server.export(gauge_request("http.server.duration",
                                         points(10, 3, T + 4 * S) + points(0, 10, T + 4 * S)))
    assert refused(answer) == (3, "3 points of 3 new series refused: max_series (20) reached")
    assert stored(server) == {"http.server.duration": (10, 40), "queue.depth": (10, 20)}

    assert status(server)["cardinality"] == {
        "series": 20, "metrics": 2, "max_series": 20, "max_series_per_metric": 10,
        "refused_series": 10}
    assert status(server)["series"] == 20
    ingest = status(server)["ingest"]
    assert ingest["rejected_points"] == {"max_series_per_metric": 6, "max_series": 7}
    assert ingest["last_rejected"]["max_series"]["message"] == (
        "3 points of 3 new series refused: max_series (20) reached")
    # one WARNING per limit: the second max_series refusal came within 10 s of the first
    lines = wait_until(lambda: len(warnings(server)) == 2 and warnings(server),
                       message="a warning per limit")
    assert lines[0].endswith("rejected 6 data points: 6 points of 3 new series refused: "
                             "max_series_per_metric (10) reached for metric "
                             "http.server.duration")
    assert lines[1].endswith("rejected 4 data points: 4 points of 4 new series refused: "
                             "max_series (20) reached")


def test_the_counts_are_read_back_after_a_restart(start_server: StartServer) -> None:
    args = ("--max-series-per-metric", "5", "--decode-workers", "0")
    first = start_server(*args)
    first.export(gauge_request("m", points(0, 5, T)))
    assert first.stop() == 0
    second = start_server(*args, db=first.db)
    answer = second.export(gauge_request("m", points(0, 6, T + S)))
    assert refused(answer) == (1, "1 point of 1 new series refused: max_series_per_metric (5) "
                                  "reached for metric m")
    assert stored(second) == {"m": (5, 10)}
    assert status(second)["cardinality"]["series"] == 5


def test_concurrent_senders_through_two_workers_cannot_overshoot(
        start_server: StartServer) -> None:
    server = start_server("--max-series-per-metric", "50", "--decode-workers", "2")
    answers: list[ExportMetricsServiceResponse] = []
    lock = threading.Lock()

    def send(sender: int) -> None:
        for part in range(4):
            first = sender * 100 + part * 5
            answer = server.export(gauge_request("burst", points(first, 5, T)))
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 32
    assert stored(server) == {"burst": (50, 50)}
    assert sum(a.partial_success.rejected_data_points for a in answers) == 160 - 50
    assert status(server)["ingest"]["rejected_points"] == {"max_series_per_metric": 110}


@pytest.mark.parametrize("workers", ["1", "0"])
def test_small_series_caches_never_store_a_series_twice(
        start_server: StartServer, workers: str) -> None:
    # 3,000 series through caches of 1,000: the caches turn over, so series come back as
    # misses and the writer must look them up in the store
    args = ("--series-cache-size", "1000", "--decode-workers", workers)
    server = start_server(*args)
    for t in (T, T + S):
        for first in range(0, 3000, 500):
            assert not server.export(gauge_request("wide", points(first, 500, t))) \
                .HasField("partial_success")
    assert stored(server) == {"wide": (3000, 6000)}
    assert server.stop() == 0
    # after a restart the writer knows only the newest series; the others are looked up
    again = start_server(*args, db=server.db)
    again.export(gauge_request("wide", points(0, 3000, T + 2 * S)))
    assert stored(again) == {"wide": (3000, 9000)}
    assert status(again)["cardinality"]["series"] == 3000


@pytest.mark.parametrize(("args", "error"), [
    (["--max-series", "-1"], "Error: --max-series: must be >= 0, 0 for no limit (got -1)"),
    (["--max-series-per-metric", "-5"],
     "Error: --max-series-per-metric: must be >= 0, 0 for no limit (got -5)"),
    (["--series-cache-size", "10"], "Error: --series-cache-size: must be >= 1000 (got 10)"),
])
def test_bad_limits_name_the_setting(tmp_path: Path, args: list[str], error: str) -> None:
    result = subprocess.run([sys.executable, "-m", "otel_hms", "serve", "--db",
                             str(tmp_path / "s.duckdb"), *args],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (1, error)


def test_rejection_warnings_are_rate_limited_per_reason(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = RejectionLog(interval=10.0, clock=lambda: now[0])

    def refused(reason: str, points: int) -> DecodedBatch:
        batch = DecodedBatch(accepted=points)
        batch.refuse(reason, points, f"{points} points refused: {reason}")
        return batch

    with caplog.at_level(logging.WARNING, "otel_hms.receiver"):
        log.log(refused("max_series", 3), "otlp/http", "a")
        now[0] += 4
        log.log(refused("max_series", 5), "otlp/http", "b")  # within 10 s: counted
        log.log(refused("retention_raw", 2), "otlp/grpc", "c")  # another reason: logged
        now[0] += 6
        log.log(refused("max_series", 7), "otlp/http", "d")
        log.log(refused("max_series", 1), "otlp/http", "e")
    assert [r.getMessage() for r in caplog.records] == [
        "otlp/http from a: rejected 3 data points: 3 points refused: max_series",
        "otlp/grpc from c: rejected 2 data points: 2 points refused: retention_raw",
        "otlp/http from d: rejected 7 data points: 7 points refused: max_series (and 1 more "
        "requests with 5 rejected points since the last line like this)"]


def get_json(server: ServerProcess, path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://{server.api}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def test_the_cardinality_view_names_the_big_metrics_and_labels(
        start_server: StartServer) -> None:
    server = start_server("--max-series", "100", "--max-series-per-metric", "6")
    combos = [{"route": r, "user.id": u} for r in ("r0", "r1") for u in ("u0", "u1", "u2")]
    server.export(gauge_request("http.server.duration", [(c, T, 1.0) for c in combos]))
    late = [{"route": r, "user.id": "u3"} for r in ("r0", "r1")]
    assert refused(server.export(gauge_request("http.server.duration",
                                               [(c, T, 1.0) for c in late])))[0] == 2
    for service in ("shop", "billing"):
        server.export(gauge_request("queue.depth", [({"queue": q}, T, 1.0) for q in ("q0", "q1")],
                                    service=service))
    code, body = get_json(server, "/api/v1/status/cardinality")
    assert code == 200
    assert body == {
        "series": 10, "metrics": 2, "max_series": 100, "max_series_per_metric": 6,
        "usage": 0.1, "refused_series": 2, "metric": None,
        "top_metrics": [
            {"metric": "http.server.duration", "series": 6, "share": 0.6, "usage": 1.0,
             "refused_points": 2, "refused_series": 2},
            {"metric": "queue.depth", "series": 4, "share": 0.4, "usage": 0.666667,
             "refused_points": 0, "refused_series": 0}],
        "top_labels": [
            {"label": "service.name", "attributes": "resource", "values": 3, "series": 10},
            {"label": "user.id", "attributes": "point", "values": 3, "series": 6},
            {"label": "route", "attributes": "point", "values": 2, "series": 6},
            {"label": "queue", "attributes": "point", "values": 2, "series": 4}],
        "top_label_values": [
            {"label": "route", "value": "r0", "series": 3},
            {"label": "route", "value": "r1", "series": 3},
            {"label": "queue", "value": "q0", "series": 2},
            {"label": "queue", "value": "q1", "series": 2},
            {"label": "user.id", "value": "u0", "series": 2},
            {"label": "user.id", "value": "u1", "series": 2},
            {"label": "user.id", "value": "u2", "series": 2}],
        "refused_metrics": [{"metric": "http.server.duration", "points": 2, "series": 2}]}

    code, body = get_json(server, "/api/v1/status/cardinality?metric=queue.depth&top=1")
    assert code == 200
    assert (body["metric"], body["top_metrics"], body["top_labels"], body["top_label_values"],
            body["refused_metrics"]) == (
        "queue.depth",
        [{"metric": "queue.depth", "series": 4, "share": 0.4, "usage": 0.666667,
          "refused_points": 0, "refused_series": 0}],
        [{"label": "queue", "attributes": "point", "values": 2, "series": 4}],
        [{"label": "queue", "value": "q0", "series": 2}], [])
    assert "/api/v1/status/cardinality" in get_json(server, "/api/v1/openapi.json")[1]["paths"]
    assert get_json(server, "/api/v1/status/cardinality?top=0") == (
        400, {"error": "top: must be an integer 1-1000 (got '0')"})
    assert get_json(server, "/api/v1/status/cardinality?metric=nope") == (
        404, {"error": "metric: no metric named 'nope' is stored; GET /api/v1/metrics lists "
                       "the names"})


def test_the_cardinality_view_needs_the_token(start_server: StartServer) -> None:
    server = start_server("--auth-token", "s3cret", "--max-series", "0")
    assert get_json(server, "/api/v1/status/cardinality")[0] == 401
    code, body = get_json(server, "/api/v1/status/cardinality", token="s3cret")
    assert (code, body["series"], body["max_series"], body["usage"]) == (200, 0, 0, None)
