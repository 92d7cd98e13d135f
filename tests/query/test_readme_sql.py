"""Every ```sql example of the README runs as written and answers what its comment says.

The examples are read from README.md (each statement under its ``-- comment``) and run
through a real ``otel-hms serve``'s SQL endpoint over points sent as the demo's services
would send them (``permits``: a request counter, the up-down counter ``active_connections``,
latency histograms; ``case-management``: satisfaction gauges, resolution times), placed a
few minutes before now because the examples ask about the last minutes.  Each example has
its expected answer here, so a new example without one fails until it gets one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from conftest import ROOT, ServerProcess, wait_until
from metric_builders import attributes

README = (ROOT / "README.md").read_text()
# The data is placed before NOW, which the server fixture sets just before it sends (not at
# collection: the suite may reach this module many minutes later); every window below
# holds the data for 90 s after that.
NOW = time.time()
SECOND = 1_000_000_000


def readme_examples() -> dict[str, str]:
    """``comment -> statement`` of every ```sql block (a statement without one: its text)."""
    examples: dict[str, str] = {}
    for block in re.findall(r"```sql\n(.*?)```", README, re.S):
        for chunk in filter(None, (c.strip() for c in block.split(";"))):
            comment = re.match(r"-- (.*)\n", chunk)
            examples[comment.group(1) if comment else chunk] = chunk
    return examples


def _ns(ago: float) -> int:
    return int((NOW - ago) * SECOND)


def _number(attrs: dict[str, str], ago: float, value: float,
            start_ago: float = 3600) -> metrics_pb2.NumberDataPoint:
    return metrics_pb2.NumberDataPoint(attributes=attributes(attrs), time_unix_nano=_ns(ago),
                                       start_time_unix_nano=_ns(start_ago), as_double=value)


def _histogram(attrs: dict[str, str], ago: float, bounds: list[float],
               counts: list[int]) -> metrics_pb2.HistogramDataPoint:
    return metrics_pb2.HistogramDataPoint(
        attributes=attributes(attrs), time_unix_nano=_ns(ago), start_time_unix_nano=_ns(ago + 10),
        count=sum(counts), explicit_bounds=bounds, bucket_counts=counts)


def _delta_histogram(name: str, *points: metrics_pb2.HistogramDataPoint) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit="s", histogram=metrics_pb2.Histogram(
        aggregation_temporality=1, data_points=points))


LATENCY_BOUNDS = [0.5, 1.0, 2.0, 5.0]
DURATION_BOUNDS = [0.1, 0.5, 1.0, 2.5]
CASE_BOUNDS = [3600.0, 86400.0, 172800.0, 604800.0]
SATISFACTION = [(100, 4.0, "web"), (95, 3.0, "phone")]  # (seconds ago, value, channel)


def _permits() -> list[metrics_pb2.Metric]:
    requests = [_number({"route": "/apply"}, 200, 10), _number({"route": "/apply"}, 100, 14),
                _number({"route": "/apply"}, 30, 19), _number({"route": "/pay"}, 200, 4),
                _number({"route": "/pay"}, 30, 6)]
    connections = [_number({"route": "/apply"}, 100, 3), _number({"route": "/apply"}, 30, 5),
                   _number({"route": "/pay"}, 100, 2)]
    return [
        metrics_pb2.Metric(name="requests_processed_total", sum=metrics_pb2.Sum(
            aggregation_temporality=2, is_monotonic=True, data_points=requests)),
        metrics_pb2.Metric(name="active_connections", sum=metrics_pb2.Sum(
            aggregation_temporality=2, is_monotonic=False, data_points=connections)),
        _delta_histogram("request_latency_seconds",
                         _histogram({"route": "/apply"}, 100, LATENCY_BOUNDS, [1, 2, 3, 1, 0]),
                         _histogram({"route": "/pay"}, 60, LATENCY_BOUNDS, [0, 1, 1, 2, 1])),
        _delta_histogram("http.server.request.duration",
                         _histogram({"http.route": "/permits"}, 90, DURATION_BOUNDS,
                                    [0, 50, 40, 10, 0])),
    ]


def _case_management() -> list[metrics_pb2.Metric]:
    satisfaction = [_number({"channel": channel}, ago, value)
                    for ago, value, channel in SATISFACTION]
    return [
        metrics_pb2.Metric(name="satisfaction_score",
                           gauge=metrics_pb2.Gauge(data_points=satisfaction)),
        _delta_histogram("case.resolution.duration",
                         _histogram({}, 100, CASE_BOUNDS, [10, 20, 8, 2, 0])),
    ]


def _request() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    for service, metrics in (("permits", _permits()), ("case-management", _case_management())):
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(attributes({"service.name": service}))
        rm.scope_metrics.add().metrics.extend(metrics)
    return request


RULES = """\
groups:
  - name: permits
    interval: 1s
    rules:
      - alert: ManyConnections
        sql: |
          SELECT Attributes['route'] AS route, arg_max(Value, TimeUnix) AS value
          FROM otel_metrics_sum WHERE MetricName = 'active_connections' GROUP BY ALL
        condition: value > 4
        for: 0s
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with the points and one firing alert (for the alerts
    tables' examples)."""
    global NOW
    NOW = time.time()
    tmp = tmp_path_factory.mktemp("readme-sql")
    (tmp / "rules.yaml").write_text(RULES)
    server = ServerProcess(tmp / "store.duckdb", ["--rules", str(tmp / "rules.yaml")], {},
                           tmp / "serve.log")
    try:
        server.wait_ready()
        server.export(_request())
        wait_until(lambda: server.scalar("SELECT count(*) FROM alerts WHERE state = 'firing'"),
                   message="ManyConnections to fire")
        yield server
    finally:
        server.kill()


def _minute(ago: float) -> str:
    start = (NOW - ago) // 60 * 60
    return dt.datetime.fromtimestamp(start, dt.UTC).isoformat()


def _satisfaction_per_minute() -> list[list[Any]]:
    minutes: dict[str, list[float]] = {}
    for ago, value, _ in SATISFACTION:
        minutes.setdefault(_minute(ago), []).append(value)
    return [["case-management", m, sum(v) / len(v)] for m, v in sorted(minutes.items())]


def _p99() -> float:
    # Rank 99 of 100 lies in (1.0, 2.5], after 90 observations, among 10.
    return 1.0 + (2.5 - 1.0) * (99 - 90) / 10


def _hourly_fill(rows: list[list[Any]]) -> bool:
    """168 hours, every one empty but the last, which holds both satisfaction points."""
    return (len(rows) == 168 and all(r[1:] == [None, 0] for r in rows[:-1])
            and rows[-1][1:] == [3.5, 2])


def _alert_rows(rows: list[list[Any]]) -> bool:
    [(name, route, state, value, active_at, fired_at)] = rows
    return (name, route, state, value) == ("ManyConnections", "/apply", "firing", 5.0) \
        and active_at == fired_at is not None


def _alert_history(rows: list[list[Any]]) -> bool:
    """inactive -> pending -> firing in one evaluation (one time: their order is open)."""
    labels = {"alertname": "ManyConnections", "route": "/apply"}
    return sorted((r[1:] for r in rows), key=repr) == [
        ["ManyConnections", labels, "inactive", "pending"],
        ["ManyConnections", labels, "pending", "firing"]] \
        and rows[0][0] == rows[1][0] is not None


# comment -> the rows (sorted when the example has no ORDER BY), or a check of them.
EXPECTED: dict[str, list[list[Any]] | Callable[[list[list[Any]]], bool]] = {
    "Latest value of every active_connections series (an up-down counter, so a sum)":
        [["/apply", 5.0], ["/pay", 2.0]],
    "Average per minute over the last hour, per service (the narrow view)":
        lambda rows: rows == _satisfaction_per_minute(),
    "Requests in the last 5 minutes from a cumulative counter (difference per series)":
        [["/apply", 9.0], ["/pay", 2.0]],
    "Share of requests answered within 2 s, from histogram buckets (bounds include 2.0)":
        [[(1 + 2 + 3 + 0 + 1 + 1) / 12]],
    "Permit applications per second over the last 5 minutes, per route":
        [["/apply", 9 / 300], ["/pay", 2 / 300]],
    "p99 booking latency per route, per minute, last hour":
        lambda rows: [(r[0], r[2]) for r in rows] == [("/permits", _p99())],
    "Share of cases closed within 48 h over the last 30 days, from the hourly roll-ups":
        [[38 / 40, 40]],
    "Satisfaction per hour for a week, empty hours shown": _hourly_fill,
    "SELECT alertname, labels['route'] AS route, state, value, active_at, fired_at FROM alerts":
        _alert_rows,
    "SELECT time, alertname, labels, from_state, to_state FROM alert_history "
    "ORDER BY time DESC": _alert_history,
}


def test_every_example_has_an_expected_answer() -> None:
    assert sorted(readme_examples()) == sorted(EXPECTED)


@pytest.mark.parametrize("comment", sorted(EXPECTED))
def test_readme_example(served: ServerProcess, comment: str) -> None:
    statement = readme_examples()[comment]
    rows = served.sql_result(statement)["rows"]
    expected = EXPECTED[comment]
    if callable(expected):
        assert expected(rows), json.dumps(rows)[:2000]
        return
    if "ORDER BY" not in statement:
        rows = sorted(rows, key=repr)
    assert rows == expected
