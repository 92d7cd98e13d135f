"""``otel_hms.configure`` against ``otel-hms serve``: arguments, ``OTEL_*`` variables, both.

Each combination runs ``tests/scripts/configure_probe.py`` in its own process (the global
MeterProvider can be set once per process), all at once against one server that requires a
bearer token, so every combination also proves its headers arrive.  A probe either exits at
once (the flush at exit delivers its point) or waits until the test has seen a periodic
export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from otel_hms.sdk.instrument import ConfigureError, make_exporter, resolve_protocol

from conftest import TESTS, ServerProcess, StartServer, wait_until

PROBE = TESTS / "scripts" / "configure_probe.py"
TOKEN = "probe-token"
DEAD = "http://127.0.0.1:9"  # nothing listens: a combination sent here would lose its point
HEADER_ENV = {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20" + TOKEN}
HEADER_ARG = {"Authorization": "Bearer " + TOKEN}  # lower-cased for gRPC metadata
DELTA, CUMULATIVE = 1, 2


def combinations(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """name -> (configure kwargs, environment, expected service, temporality, resource)."""
    grpc, http = server.grpc, server.http
    return {
        "args-grpc": {
            "kwargs": {"service_name": "cfg-args-grpc", "endpoint": grpc, "protocol": "grpc",
                       "interval": 3600, "headers": HEADER_ARG},
            "env": {}, "temporality": CUMULATIVE},
        "env-grpc": {
            "kwargs": {}, "wait": True,
            "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{grpc}",
                    "OTEL_SERVICE_NAME": "cfg-env-grpc", "OTEL_METRIC_EXPORT_INTERVAL": "300",
                    **HEADER_ENV},
            "temporality": CUMULATIVE},
        "env-http-resource": {
            "kwargs": {"resource_attributes": {"team": "cases"}, "interval": 3600},
            "env": {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{http}",
                    "OTEL_RESOURCE_ATTRIBUTES":
                        "service.name=cfg-env-http,deployment.environment=test,team=permits",
                    **HEADER_ENV},
            "temporality": CUMULATIVE,
            "resource": {"team": "cases", "deployment.environment": "test"}},
        "env-signal-specific": {
            "kwargs": {"service_name": "cfg-signal"},
            "env": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": DEAD,
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://{http}/v1/metrics",
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
                    "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
                    "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "authorization=Bearer%20" + TOKEN},
            "temporality": DELTA},
        "args-win": {
            "kwargs": {"service_name": "cfg-args-win", "endpoint": http, "protocol": "http",
                       "temporality": "delta", "interval": 0.3, "headers": HEADER_ARG},
            "wait": True,
            "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": DEAD, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                    "OTEL_SERVICE_NAME": "wrong-name",
                    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20wrong",
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative",
                    "OTEL_METRIC_EXPORT_INTERVAL": "3600000"},
            "temporality": DELTA},
    }


def run_probe(name: str, combo: dict[str, Any], add: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    spec = {"kwargs": combo["kwargs"], "combo": name, "add": add, "wait": combo.get("wait")}
    return subprocess.Popen([sys.executable, str(PROBE), json.dumps(spec)],
                            env={**env, **combo["env"]}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def points(server: ServerProcess, combo: str) -> list[dict[str, Any]]:
    return server.sql(f"""
        SELECT ServiceName, Value, AggregationTemporality, ResourceAttributes
        FROM otel_metrics_sum WHERE MetricName = 'configure_probe_total'
          AND Attributes['combo'] = '{combo}' ORDER BY TimeUnixNano""")


def test_arguments_and_environment(start_server: StartServer) -> None:
    server = start_server("--auth-token", TOKEN)
    server.token = TOKEN
    combos = combinations(server)
    probes = {name: run_probe(name, combo, add=7 + i)
              for i, (name, combo) in enumerate(combos.items())}
    for i, (name, combo) in enumerate(combos.items()):
        probe = probes[name]
        if combo.get("wait"):  # a periodic export arrives while the process still runs
            wait_until(lambda n=name: points(server, n), timeout=30,
                       message=f"a periodic export from {name}")
            assert probe.poll() is None, probe.stderr.read() if probe.stderr else ""
        out, err = probe.communicate(timeout=60)
        assert probe.returncode == 0, f"{name}:\n{err}"
        assert out.splitlines() == [
            "second configure refused: configure: already called in this process with other "
            "arguments; the global MeterProvider can be set only once", "recorded"], name
        assert "Failed to export" not in err and "Traceback" not in err, f"{name}:\n{err}"

        found = points(server, name)
        service = combo["kwargs"].get("service_name") or (
            combo["env"].get("OTEL_SERVICE_NAME") or "cfg-env-http")
        assert {p["ServiceName"] for p in found} == {service}, name
        assert {p["AggregationTemporality"] for p in found} == {combo["temporality"]}, name
        total = sum(p["Value"] for p in found) if combo["temporality"] == DELTA \
            else found[-1]["Value"]
        assert total == 7 + i, (name, found)
        if not combo.get("wait"):
            assert len(found) == 1, (name, found)  # only the flush at exit exported
        for key, value in combo.get("resource", {}).items():
            assert found[-1]["ResourceAttributes"][key] == value, (name, key)


def test_protocol_variables_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert resolve_protocol(None) == "http"
    assert resolve_protocol("grpc") == "grpc"  # the argument wins
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ConfigureError) as raised:
        resolve_protocol(None)
    assert str(raised.value) == ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: expected grpc, http or "
                                 "http/protobuf (got 'carrier-pigeon')")
    with pytest.raises(ConfigureError, match="'http/json' has no exporter in the Python SDK"):
        resolve_protocol("http/json")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"endpoint": "ftp://host:1"}, "endpoint: expected HOST:PORT or http(s)://HOST:PORT "
                                   "(got 'ftp://host:1')"),
    ({"temporality": "sometimes"}, "temporality: expected cumulative, delta or lowmemory "
                                   "(got 'sometimes')"),
    ({"embedded": "x.duckdb", "endpoint": "127.0.0.1:4317"},
     "embedded: writes to a file in this process; give it or endpoint/protocol/headers, "
     "not both"),
])
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigureError) as raised:
        make_exporter(**kwargs)
    assert str(raised.value) == message
