"""Memory per series: how much the server and its decode worker grow per distinct series.

Starts ``otel-hms serve`` on a fresh store, sends ``--series`` distinct gauge series over
OTLP/HTTP (5,000 per request, a resource of 12 attributes, 4 point attributes), then sends
every series once more, so the caches hold what steady ingest leaves in them, and reads the
resident memory (VmRSS) of the server and of each decode worker after a warm-up request and
after the last one.  The cardinality limits are off (all the series are stored); extra
``serve`` options go in ``--server-args`` (e.g. a small ``--series-cache-size`` to see the
ceiling).

    python bench/series_memory.py --series 200000
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from workload import NAMESPACE, SERVICES, kv

PER_REQUEST = 5_000
RESOURCE = {"service.name": SERVICES[0], "service.namespace": NAMESPACE,
            "service.version": "1.24.3", "service.instance.id": "checkout-7d9f8-abcde",
            "host.name": "node-17", "host.arch": "amd64", "os.type": "linux",
            "process.pid": "4242", "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.language": "java", "k8s.namespace.name": NAMESPACE,
            "cloud.region": "eu-west-1"}


def _request(first: int, count: int, t: int) -> bytes:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(kv(k, v) for k, v in RESOURCE.items())
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = "bench.series_memory"
    for i in range(first, first + count):
        dp = metric.gauge.data_points.add()
        dp.time_unix_nano = t
        dp.as_double = float(i)
        dp.attributes.extend([kv("http.route", f"/api/v1/items/{i % 97}"),
                              kv("http.request.method", "GET"),
                              kv("user.id", f"user-{i:09d}"),
                              kv("server.port", "8080")])
    return request.SerializeToString()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as reply:
        result: dict[str, object] = json.load(reply)
        return result


def _post(url: str, body: bytes) -> None:
    post = urllib.request.Request(url, data=body, method="POST",
                                  headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(post, timeout=120) as reply:
        reply.read()


def measure(series: int, server_args: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        http, api = f"127.0.0.1:{_port()}", f"127.0.0.1:{_port()}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "otel_hms", "serve", "--db", f"{tmp}/s.duckdb",
             "--otlp-grpc", f"127.0.0.1:{_port()}", "--otlp-http", http, "--api", api,
             "--retention-raw", "forever", "--log-level", "warning", "--max-series", "0",
             "--max-series-per-metric", "0", *server_args])
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _get(f"http://{api}/healthz")
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("otel-hms serve did not start") from None
                    time.sleep(0.1)
            url = f"http://{http}/v1/metrics"
            t0 = time.time_ns() - 3600 * 10**9
            _post(url, _request(series + 1, 100, t0))  # warm-up: imports, first series
            status = _get(f"http://{api}/api/v1/status")
            decode = status.get("decode")
            workers = list(decode["pids"]) if isinstance(decode, dict) else []
            before = {"server": _rss_kib(proc.pid), **{w: _rss_kib(w) for w in workers}}
            started = time.monotonic()
            for rnd in range(2):
                for first in range(0, series, PER_REQUEST):
                    _post(url, _request(first, min(PER_REQUEST, series - first),
                                        t0 + (rnd + 1) * 10**9))
            seconds = time.monotonic() - started
            after = {"server": _rss_kib(proc.pid), **{w: _rss_kib(w) for w in workers}}
        finally:
            proc.terminate()
            proc.wait(60)
    out = {"series": float(series), "seconds": seconds,
           "server_bytes_per_series": (after["server"] - before["server"]) * 1024 / series,
           "server_mib": after["server"] / 1024}
    for i, w in enumerate(workers):
        out[f"worker{i}_bytes_per_series"] = (after[w] - before[w]) * 1024 / series
        out[f"worker{i}_mib"] = after[w] / 1024
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=200_000, help="distinct series sent")
    parser.add_argument("--server-args", default="", help="extra `otel-hms serve` options")
    args = parser.parse_args()
    result = measure(args.series, shlex.split(args.server_args))
    for key, value in result.items():
        print(f"{key:28} {value:12,.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
