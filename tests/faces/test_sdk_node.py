"""End to end with a non-Python client: the OpenTelemetry JavaScript SDK over OTLP/gRPC.

``tests/js/send_metrics.js`` records a counter, an up-down counter, an explicit-bucket and an
exponential histogram and an observable gauge, exports once on ``forceFlush()`` and once more
on ``shutdown()``; these tests check every value it sent, through the SQL endpoint.  They need
``node`` and ``npm ci --prefix tests/js`` (CI does both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from conftest import TESTS, ServerProcess, StartServer, wait_until

JS_DIR = TESTS / "js"
SCRIPT = JS_DIR / "send_metrics.js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (needed to run the "
                       "OpenTelemetry JavaScript SDK)"),
    pytest.mark.skipif(not (JS_DIR / "node_modules" / "@opentelemetry" / "sdk-metrics").is_dir(),
                       reason="tests/js/node_modules is missing: run `npm ci --prefix tests/js`"),
]

SERVICE = "sdk-node-e2e"
CUMULATIVE = 2


def send(endpoint: str, prefix: str) -> subprocess.CompletedProcess[str]:
    """Run the JavaScript sender; OTEL_* variables of the calling shell are not passed on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run([str(NODE), str(SCRIPT), endpoint, prefix], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def rows(server: ServerProcess, query: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        found[:] = server.sql(query)
        return len(found) >= count

    wait_until(enough, timeout=10, message=f"{count} rows from: {query}")
    assert len(found) == count, found
    return found


def test_javascript_sdk_over_grpc(server: ServerProcess) -> None:
    prefix = "sdk_node.e2e"
    result = send(server.grpc, prefix)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "otel warn" not in result.stderr and "otel error" not in result.stderr, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["collections"] == 2 and summary["problems"] == []

    # Counter (ValueType.INT): cumulative, one start time per series across both exports.
    requests = rows(server, f"""
        SELECT Attributes['route'] AS route, Value, ValueInt, typeof(ValueInt) AS int_type,
               IsMonotonic, AggregationTemporality, MetricUnit, MetricDescription,
               ServiceName, ScopeName, ScopeVersion, Attributes, AttributesTyped,
               ResourceAttributes, ResourceAttributesTyped, StartTimeUnixNano, TimeUnixNano
        FROM otel_metrics_sum WHERE MetricName = '{prefix}.requests'
        ORDER BY TimeUnixNano, route""", 4)
    assert [(r["route"], r["Value"], r["ValueInt"]) for r in requests] == [
        ("/a", 7.0, 7), ("/b", 5.0, 5), ("/a", 17.0, 17), ("/b", 5.0, 5)]
    for r in requests:
        assert isinstance(r["ValueInt"], int) and r["int_type"] == "BIGINT"
        assert r["IsMonotonic"] is True
        assert r["AggregationTemporality"] == CUMULATIVE
        assert (r["MetricUnit"], r["MetricDescription"]) == ("{request}", "Requests served.")
        assert r["ServiceName"] == SERVICE
        assert (r["ScopeName"], r["ScopeVersion"]) == ("otel_hms.tests.sdk_node", "7.8.9")
        resource = r["ResourceAttributes"]
        assert resource["service.name"] == SERVICE
        assert resource["service.version"] == "4.5.6"
        assert resource["host.cores"] == "2"
        assert resource["telemetry.sdk.language"] == "nodejs"
        assert json.loads(r["ResourceAttributesTyped"])["host.cores"] == {"intValue": 2}
        assert 0 < r["StartTimeUnixNano"] <= r["TimeUnixNano"]
    first_a, first_b, second_a, second_b = requests
    assert first_a["Attributes"] == {"route": "/a", "code": "200", "cached": "false"}
    assert json.loads(first_a["AttributesTyped"]) == {
        "route": {"stringValue": "/a"}, "code": {"intValue": 200},
        "cached": {"boolValue": False}}
    assert first_b["Attributes"] == {"route": "/b", "code": "404", "cached": "true"}
    assert first_a["StartTimeUnixNano"] == second_a["StartTimeUnixNano"]
    assert first_b["StartTimeUnixNano"] == second_b["StartTimeUnixNano"]
    assert first_a["TimeUnixNano"] < second_a["TimeUnixNano"]

    # Up-down counter: negative, not monotonic.
    queue = rows(server, f"""
        SELECT Value, ValueInt, IsMonotonic, AggregationTemporality
        FROM otel_metrics_sum WHERE MetricName = '{prefix}.queue_depth'
        ORDER BY TimeUnixNano""", 2)
    assert queue == [{"Value": -3.0, "ValueInt": -3, "IsMonotonic": False,
                      "AggregationTemporality": CUMULATIVE}] * 2

    # Histogram with advised bucket boundaries [1, 10, 100]; upper bounds are inclusive.
    latency = rows(server, f"""
        SELECT Count, Sum, Min, Max, BucketCounts, ExplicitBounds, AggregationTemporality,
               Attributes, MetricUnit
        FROM otel_metrics_histogram WHERE MetricName = '{prefix}.latency'
        ORDER BY TimeUnixNano""", 2)
    common = {"ExplicitBounds": [1.0, 10.0, 100.0], "AggregationTemporality": CUMULATIVE,
              "Attributes": {"route": "/h"}, "MetricUnit": "ms"}
    assert latency == [
        {"Count": 6, "Sum": 566.5, "Min": 0.5, "Max": 500.0, "BucketCounts": [2, 2, 1, 1],
         **common},
        {"Count": 7, "Sum": 2566.5, "Min": 0.5, "Max": 2000.0, "BucketCounts": [2, 2, 1, 2],
         **common},
    ]

    # Exponential histogram (a View): 0 1 2 3 4.  1..4 fits 160 buckets at scale 6, from
    # index -1 (1 is the upper bound of bucket -1); 2, 3 and 4 fall in buckets 63, 101, 127.
    exp = rows(server, f"""
        SELECT Count, Sum, Min, Max, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts,
               NegativeBucketCounts, AggregationTemporality, MetricUnit
        FROM otel_metrics_exp_histogram WHERE MetricName = '{prefix}.exp_latency'
        ORDER BY TimeUnixNano""", 2)
    for point in exp:
        counts = point.pop("PositiveBucketCounts")
        assert point == {"Count": 5, "Sum": 10.0, "Min": 0.0, "Max": 4.0, "Scale": 6,
                         "ZeroCount": 1, "PositiveOffset": -1,
                         "NegativeBucketCounts": point["NegativeBucketCounts"],
                         "AggregationTemporality": CUMULATIVE, "MetricUnit": "s"}
        assert sum(point["NegativeBucketCounts"]) == 0
        assert sum(counts) + point["ZeroCount"] == point["Count"]
        assert {i: c for i, c in enumerate(counts) if c} == {0: 1, 64: 1, 102: 1, 128: 1}

    # Observable gauge: the callback ran once per export, with different readings.
    temperature = rows(server, f"""
        SELECT Attributes['room'] AS room, Value, ValueInt, MetricUnit, ServiceName
        FROM otel_metrics_gauge WHERE MetricName = '{prefix}.temperature'
        ORDER BY TimeUnixNano, room""", 4)
    assert [(r["room"], r["Value"], r["ValueInt"]) for r in temperature] == [
        ("a", 21.5, None), ("b", -3.25, None), ("a", 22.75, None), ("b", -4.0, None)]
    assert {(r["MetricUnit"], r["ServiceName"]) for r in temperature} == {("Cel", SERVICE)}

    # Nothing else arrived, and each series is stored once.
    assert server.scalar(f"SELECT count(*) FROM otel_series "
                         f"WHERE starts_with(MetricName, '{prefix}.')") == 2 + 1 + 1 + 1 + 2


def test_javascript_sdk_reports_a_refused_export(start_server: StartServer) -> None:
    """The sender fails loudly when the server refuses it, so a 0 exit above means success."""
    server = start_server("--auth-token", "not-sent-by-the-script")
    result = send(f"http://{server.grpc}", "sdk_node.refused")
    assert result.returncode == 1, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "otel error" in result.stderr, result.stderr
    assert "bearer token" in result.stderr.lower(), result.stderr
    server.token = "not-sent-by-the-script"
    assert server.scalar("SELECT count(*) FROM otel_series") == 0
