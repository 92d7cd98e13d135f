"""The demo keeps its promise: ``otel-hms serve --demo`` fires HighLatency within a minute,
``otel-hms demo`` drives a running server with the agreed metric names, and a non-editable
install carries the demo's files (and every subpackage)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import trustme

from otel_hms.demo import demo_dir, rules_file

from conftest import ROOT, ServerProcess, StartServer, wait_until

# service, metric, type, attribute keys: the names the dashboard and the rules rely on.
DEMO_SERIES = {
    ("permits", "requests_processed_total", "sum", ("route", "status")),
    ("permits", "active_connections", "sum", ("route",)),
    ("permits", "request_latency_seconds", "histogram", ("route",)),
    ("case-management", "cases_resolved_total", "sum", ("team",)),
    ("case-management", "case_resolution_seconds", "histogram", ()),
    ("case-management", "satisfaction_score", "gauge", ("channel",)),
    ("case-management", "agent_conflicts_total", "sum", ()),
}


def alerts(server: ServerProcess) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://{server.api}/api/v1/alerts", timeout=5) as r:
        found: list[dict[str, Any]] = json.load(r)["alerts"]
        return found


def demo_series(server: ServerProcess) -> set[tuple[str, str, str, tuple[str, ...]]]:
    rows = server.sql("SELECT DISTINCT ServiceName, MetricName, MetricType, "
                      "list_sort(map_keys(Attributes)) AS keys FROM otel_series")
    return {(r["ServiceName"], r["MetricName"], r["MetricType"], tuple(r["keys"]))
            for r in rows}


def test_serve_demo_fires_high_latency_within_a_minute(start_server: StartServer) -> None:
    started = time.monotonic()
    server = start_server("--demo")
    firing = wait_until(
        lambda: [a for a in alerts(server)
                 if a["alertname"] == "HighLatency" and a["state"] == "firing"],
        timeout=75, interval=0.5, message="HighLatency to fire")
    took = time.monotonic() - started
    assert took < 75, took
    (alert,) = firing
    assert alert["labels"] == {"alertname": "HighLatency", "route": "/apply",
                               "severity": "critical", "service": "permits"}
    assert alert["value"] > 2
    assert alert["annotations"]["summary"] == (
        f"p99 latency {round(alert['value'], 2)} s on /apply over the last minute")
    assert DEMO_SERIES <= demo_series(server)
    bounds = server.sql("SELECT DISTINCT MetricName, ExplicitBounds FROM otel_metrics_histogram")
    by_metric = {r["MetricName"]: r["ExplicitBounds"] for r in bounds}
    assert 2.0 in by_metric["request_latency_seconds"]
    assert 172800.0 in by_metric["case_resolution_seconds"]
    with urllib.request.urlopen(f"http://{server.api}/api/v1/dashboards", timeout=5) as r:
        assert [d["id"] for d in json.load(r)["dashboards"]] == ["permits"]
    assert server.stop() == 0
    assert "otel_hms.demo: [   10s] latency spike on /apply begins" in server.log.read_text()


def test_demo_command_drives_a_running_server(start_server: StartServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTEL_HMS_"))}
    path = subprocess.run([sys.executable, "-m", "otel_hms", "demo", "--rules-path"],
                          capture_output=True, text=True, timeout=30, env=env, check=True)
    assert path.stdout == f"{rules_file()}\n"
    server = start_server("--rules", path.stdout.strip())
    done = subprocess.run(
        [sys.executable, "-m", "otel_hms", "demo", "--endpoint", server.grpc, "--api",
         server.api, "--duration", "4s", "--interval", "1s"],
        capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"otel-hms demo: services permits and case-management export to "
                        f"{server.grpc} every 1 s; alerts from http://{server.api}")
    assert re.fullmatch(r"otel-hms demo: stopped after \d+ s", lines[-1]), lines[-1]
    # Everything recorded was flushed before the command ended.
    assert demo_series(server) == DEMO_SERIES
    # Cumulative: each series' last point holds its total; every request has one latency.
    counted = server.scalar("""
        SELECT sum(c) FROM (SELECT arg_max(Count, TimeUnixNano) AS c FROM otel_metrics_histogram
                            WHERE MetricName = 'request_latency_seconds' GROUP BY SeriesId)""")
    processed = server.scalar("""
        SELECT sum(v) FROM (SELECT arg_max(Value, TimeUnixNano) AS v FROM otel_metrics_sum
                            WHERE MetricName = 'requests_processed_total' GROUP BY SeriesId)""")
    assert counted == processed > 0


def test_demo_command_errors() -> None:
    done = subprocess.run([sys.executable, "-m", "otel_hms", "demo", "--duration", "soon"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode, done.stderr) == (
        1, "Error: --duration: expected a duration like 90s or 5m (got 'soon')\n")


def test_wheel_carries_the_demo_and_every_subpackage(tmp_path: Path) -> None:
    """A non-editable ``pip install .`` gets the rules file and all the code."""
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the worktree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache",
        "*.duckdb*"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("otel_hms-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "otel_hms/demo/rules.yaml" in names
    for folder, package in (("otel_hms", "otel_hms"), ("receiver", "otel_hms/receiver"),
                            ("storage", "otel_hms/storage"),
                            ("alerting", "otel_hms/alerting")):
        for source in (ROOT / folder).rglob("*.py"):
            relative = source.relative_to(ROOT / folder).as_posix()
            assert f"{package}/{relative}" in names, relative
    for asset in (ROOT / "otel_hms" / "dashboard" / "static").iterdir():
        assert f"otel_hms/dashboard/static/{asset.name}" in names
    for data in demo_dir().rglob("*.yaml"):
        assert f"otel_hms/demo/{data.relative_to(demo_dir()).as_posix()}" in names


def test_serve_demo_refuses_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    done = subprocess.run(
        [sys.executable, "-m", "otel_hms", "serve", "--demo", "--db", str(tmp_path / "d.duckdb"),
         "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")],
        capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode, done.stderr) == (
        1, "Error: --demo: the demo sends plain OTLP to this server; leave out "
           "--tls-cert/--tls-key\n")
    assert not (tmp_path / "d.duckdb").exists()
