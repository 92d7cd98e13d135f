"""The examples run as documented: a Python ASGI service with the stock OpenTelemetry
middleware and a Node service, each against ``otel-hms serve`` with real HTTP requests and
exact counts; the Collector's Prometheus pull config (no Collector binary installs here: not
on PyPI, npm or Debian) is checked for structure, and its scrape target for valid exposition
text (checked by ``promtool``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, TESTS, ServerProcess, free_port, wait_until

EXAMPLES = ROOT / "examples"
JS_MODULES = TESTS / "js" / "node_modules"
NODE = shutil.which("node")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**env, **extra}


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def call(url: str, body: dict[str, Any] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps it and closes its pipes


def stop(proc: subprocess.Popen[str], code: int = 0) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, f"exit {proc.returncode}\n{out}\n{err}"
    return out, err


def durations(server: ServerProcess, service: str) -> list[tuple[Any, ...]]:
    rows = server.sql(f"""
        SELECT Attributes['http.route'] AS route, Attributes['http.request.method'] AS method,
               Attributes['http.response.status_code'] AS status, Count, MetricUnit
        FROM otel_metrics_histogram
        WHERE ServiceName = '{service}' AND MetricName = 'http.server.request.duration'
        ORDER BY method, status, route""")
    return [(r["route"], r["method"], r["status"], r["Count"], r["MetricUnit"]) for r in rows]


def test_python_asgi_service(server: ServerProcess,
                             processes: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLES / "python-asgi"),
         "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{server.grpc}",
                      OTEL_SEMCONV_STABILITY_OPT_IN="http",
                      OTEL_METRIC_EXPORT_INTERVAL="3600000"),  # only the flush at exit
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(app)
    wait_until(lambda: listening(port) or app.poll() is not None, timeout=30,
               message="the ASGI example to listen")
    base = f"http://127.0.0.1:{port}"
    assert [call(f"{base}/permits/{n}") for n in (41, 42, 43)] == [200] * 3
    assert [call(f"{base}/applications", {"zone": "north"}) for _ in range(2)] == [201] * 2
    assert call(f"{base}/no-such-page") == 404
    _, err = stop(app, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
    assert "Traceback" not in err and "Failed to export" not in err, err

    # The stock middleware's metrics (no route: raw ASGI does not know Starlette's routes).
    assert durations(server, "permits-web") == [
        (None, "GET", "200", 3, "s"), (None, "GET", "404", 1, "s"),
        (None, "POST", "201", 2, "s")]
    assert server.sql("""
        SELECT MetricName, Attributes['http.request.method'] AS method,
               Attributes['zone'] AS zone, Value
        FROM otel_metrics_sum WHERE ServiceName = 'permits-web' ORDER BY MetricName, method""") == [
        {"MetricName": "http.server.active_requests", "method": "GET", "zone": None,
         "Value": 0.0},
        {"MetricName": "http.server.active_requests", "method": "POST", "zone": None,
         "Value": 0.0},
        {"MetricName": "permit_applications_total", "method": None, "zone": "north",
         "Value": 2.0}]
    assert server.scalar("SELECT DISTINCT ScopeName FROM otel_series WHERE MetricName = "
                         "'http.server.request.duration'") == "opentelemetry.instrumentation.asgi"


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.skipif(not (JS_MODULES / "@opentelemetry" / "sdk-metrics").is_dir(),
                    reason="tests/js/node_modules is missing: run `npm ci --prefix tests/js`")
def test_node_service(server: ServerProcess, processes: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    # The example's package.json names the same packages tests/js installs.
    wanted = json.loads((EXAMPLES / "node" / "package.json").read_text())["dependencies"]
    installed = json.loads((JS_MODULES.parent / "package.json").read_text())["dependencies"]
    assert {k: installed.get(k) for k in wanted} == wanted
    app = subprocess.Popen(
        [str(NODE), str(EXAMPLES / "node" / "server.js")],
        env=clean_env(NODE_PATH=str(JS_MODULES), PORT=str(port),
                      OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{server.grpc}",
                      OTEL_SERVICE_NAME="permits-node",
                      OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(app)
    wait_until(lambda: listening(port) or app.poll() is not None, timeout=30,
               message="the Node example to listen")
    base = f"http://127.0.0.1:{port}"
    assert [call(f"{base}/permits/{n}") for n in range(4)] == [200] * 4
    assert call(f"{base}/healthz") == 200
    assert [call(f"{base}/elsewhere") for _ in range(2)] == [404] * 2
    out, err = stop(app)
    assert out == f"listening on http://127.0.0.1:{port}\n"
    assert err == ""

    assert durations(server, "permits-node") == [
        ("/healthz", "GET", "200", 1, "s"), ("/permits/{number}", "GET", "200", 4, "s"),
        (None, "GET", "404", 2, "s")]
    assert server.sql("""
        SELECT Value, ResourceAttributes['deployment.environment'] AS env FROM otel_metrics_sum
        WHERE ServiceName = 'permits-node' AND MetricName = 'permit_lookups_total'""") == [
        {"Value": 4.0, "env": "test"}]


def test_collector_scrape_config() -> None:
    config = yaml.safe_load((EXAMPLES / "collector-prometheus" / "collector.yaml").read_text())
    pipeline = config["service"]["pipelines"]["metrics"]
    for section in ("receivers", "processors", "exporters"):
        for name in pipeline[section]:
            assert name in config[section], f"{section}: {name} is used but not defined"
    (job,) = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["${env:PERMITS_METRICS_TARGET:-127.0.0.1:8000}"]}]
    exporter = config["exporters"][pipeline["exporters"][0]]
    assert exporter["endpoint"] == "${env:OTEL_HMS_ENDPOINT:-127.0.0.1:14317}"
    assert exporter["tls"] == {"insecure": True}
    assert exporter["retry_on_failure"]["enabled"] is True


def test_scrape_target_serves_prometheus_text(tmp_path: Path,
                                              processes: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "collector-prometheus" / "legacy_service.py"),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(service)
    wait_until(lambda: listening(port) or service.poll() is not None, timeout=30,
               message="the Prometheus example to listen")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return str(r.read().decode())

    def sample(text: str, name: str) -> float:
        (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(line.split()[-1])

    def grown() -> str | None:
        text = scrape()
        count = "request_latency_seconds_count"
        return text if sample(text, count) > sample(first, count) else None

    first = scrape()
    later = wait_until(grown, timeout=10, message="the counters to grow")
    buckets = [float(line.split()[-1]) for line in later.splitlines()
               if line.startswith("request_latency_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == sample(later,
                                                                "request_latency_seconds_count")
    promtool = shutil.which("promtool")  # scripts/test installs Debian's prometheus for it
    assert promtool is not None, "promtool is missing: apt-get install prometheus"
    checked = subprocess.run([promtool, "check", "metrics"], input=later, text=True,
                             capture_output=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
