#!/usr/bin/env python3
"""Alerting benchmark: many SQL rules over a large store, on a real ``otel-hms serve``.

Run as ``python bench/alerting.py [--rules 500] [--points 10000000] [--interval 15]``.

1. Fills a fresh store with ``--points`` gauge points through the real decoder and writer:
   one metric per rule, 5 series each, one point per series per second, ending now, written
   in time order as live ingest would (all series of one second together).
2. Starts ``otel-hms serve`` on it with ``--rules`` rules in groups of 50 (``--interval``):
   each rule is ``max(Value)`` per route over the last 5 minutes of its metric, condition
   ``value > 100`` (never true for the stored data), ``for: 0s``, notifying a webhook
   receiver run by this script.
3. Records every group evaluation's duration from ``GET /api/v1/rules`` for ``--cycles``
   cycles: per cycle, the slowest group (cycles run groups in parallel) and the sum.
4. ``--breaches`` times: sends one breaching point over OTLP/gRPC, and measures from the
   export's acknowledgement (the point is committed) to the webhook's receipt of the firing
   notification; then a normal point, and waits for the resolution.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from store_fill import fill_store
from workload import kv

SERIES_PER_RULE = 5
GROUP_SIZE = 50


def slice_request(rules: int, t_ns: list[int], value: float = 10.0,
                  only: tuple[int, int] | None = None) -> ExportMetricsServiceRequest:
    """Every series (or ``only`` = (rule, route)) at the timestamps ``t_ns``."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "bench"))
    sm = rm.scope_metrics.add()
    for r in range(rules):
        if only is not None and r != only[0]:
            continue
        metric = sm.metrics.add()
        metric.name = f"bench.m{r}"
        for s in range(SERIES_PER_RULE):
            if only is not None and s != only[1]:
                continue
            for t in t_ns:
                dp = metric.gauge.data_points.add()
                dp.attributes.append(kv("route", f"/r{s}"))
                dp.time_unix_nano = t
                dp.as_double = value + (t // 10**9 + s) % 7
    return request


def fill(db: Path, rules: int, points: int) -> float:
    """Write ``points`` points ending now; returns the seconds it took."""
    series = rules * SERIES_PER_RULE
    seconds = max(1, points // series)
    now = time.time_ns()
    per_request = max(1, 20_000 // series)

    def requests() -> Iterator[ExportMetricsServiceRequest]:
        for first in range(seconds, 0, -per_request):
            ts = [now - k * 10**9 for k in range(first, max(0, first - per_request), -1)]
            yield slice_request(rules, ts)

    stored, took = fill_store(db, requests())
    print(f"stored {stored:,} points in {series:,} series "
          f"({seconds} s of history) in {took:.0f} s", flush=True)
    return took


def rules_yaml(rules: int, interval: float, hook: str) -> str:
    lines = [f"notifiers:\n  hook: {{type: webhook, url: '{hook}'}}\ngroups:"]
    for g in range(0, rules, GROUP_SIZE):
        lines.append(f"  - name: g{g // GROUP_SIZE}\n    interval: {interval:g}s\n    rules:")
        for r in range(g, min(rules, g + GROUP_SIZE)):
            lines.append(
                f"      - alert: Bench{r}\n"
                f"        sql: >-\n"
                f"          SELECT Attributes['route'] AS route, max(Value) AS value\n"
                f"          FROM otel_metrics_gauge WHERE MetricName = 'bench.m{r}'\n"
                f"          AND TimeUnix > now() - INTERVAL 5 MINUTE GROUP BY ALL\n"
                f"        condition: value > 100\n        notify: [hook]")
    return "\n".join(lines) + "\n"


class Hook:
    """Webhook receiver noting when each firing/resolved notification arrives."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                for a in body["alerts"]:
                    hook.events.append((time.time(), a["labels"]["alertname"], a["status"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, alert: str, status: str, after: float, timeout: float) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, name, st in list(self.events):
                if name == alert and st == status and t >= after:
                    return t
            time.sleep(0.01)
        raise SystemExit(f"no {status} notification for {alert} within {timeout:g} s")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(api: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{api}{path}", timeout=30) as r:
        return json.load(r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--breaches", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="otel-hms-bench-") as tmp:
        db = Path(tmp) / "bench.duckdb"
        fill(db, args.rules, args.points)
        hook = Hook()
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(rules_yaml(args.rules, args.interval, hook.url))
        grpc_addr, api = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        log = open(Path(tmp) / "serve.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "otel_hms", "serve", "--db", str(db), "--rules", str(rules),
             "--otlp-grpc", grpc_addr, "--otlp-http", f"127.0.0.1:{free_port()}",
             "--api", api], stdout=log, stderr=subprocess.STDOUT)
        try:
            return run(args, api, grpc_addr, hook)
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()


def run(args: argparse.Namespace, api: str, grpc_addr: str, hook: Hook) -> int:
    deadline = time.time() + 120
    while True:
        try:
            get(api, "/healthz")
            break
        except OSError:
            if time.time() > deadline:
                raise SystemExit("otel-hms serve did not start") from None
            time.sleep(0.2)
    seen: dict[tuple[str, float], float] = {}
    cycles: dict[float, list[float]] = {}
    missed = 0
    deadline = time.time() + args.interval * (args.cycles + 3) + 120
    while time.time() < deadline:
        status = get(api, "/api/v1/rules")
        for g in status["groups"]:
            if g["lastEvaluation"] is not None and (g["name"], g["lastEvaluation"]) not in seen:
                seen[(g["name"], g["lastEvaluation"])] = g["evaluationSeconds"]
                cycles.setdefault(g["lastEvaluation"], []).append(g["evaluationSeconds"])
        missed = sum(g["missedIterations"] for g in status["groups"])
        groups = len(status["groups"])
        full = [c for c in sorted(cycles) if len(cycles[c]) == groups]
        if len(full) > args.cycles:  # the first (start-up) evaluation is not slotted
            break
        time.sleep(0.5)
    full = [c for c in sorted(cycles) if len(cycles[c]) == groups][1:args.cycles + 1]
    slowest = [max(cycles[c]) for c in full]
    total = [sum(cycles[c]) for c in full]
    errors = [r for g in status["groups"] for r in g["rules"] if r["health"] == "error"]
    print(f"{args.rules} rules in {groups} groups every {args.interval:g} s, {len(full)} cycles:"
          f" slowest group median {statistics.median(slowest):.2f} s (max {max(slowest):.2f}),"
          f" all groups' time summed median {statistics.median(total):.2f} s;"
          f" missed slots {missed}; rules in error {len(errors)}", flush=True)

    delays = []
    with grpc.insecure_channel(grpc_addr) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
        for b in range(args.breaches):
            rule = (b * 97) % args.rules
            stub.Export(slice_request(args.rules, [time.time_ns()], 10_000.0, (rule, 0)),
                        timeout=30)
            committed = time.time()
            fired = hook.wait(f"Bench{rule}", "firing", committed, args.interval * 3 + 30)
            delays.append(fired - committed)
            print(f"  breach {b + 1}: notified {fired - committed:.2f} s after commit",
                  flush=True)
    print(f"breach to notification: median {statistics.median(delays):.2f} s, "
          f"max {max(delays):.2f} s (interval {args.interval:g} s, for 0 s)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
