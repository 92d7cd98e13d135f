#!/usr/bin/env python3
"""End-to-end ingest benchmark: OTLP/gRPC into ``otel-hms serve``, committed points per second.

Run as ``python bench/ingest.py [--points N] [--runs K] [--clients C]``; see bench/README.md.

Each run starts a fresh ``otel-hms serve`` (new temp DuckDB file, free loopback ports), then
``C`` client *processes* (default 10, the Collector exporter's default number of queue
consumers) send pre-serialized ``ExportMetricsServiceRequest`` bytes, gzipped ahead of time,
as gRPC unary calls over HTTP/2 (``grpc_h2``), as the Collector's OTLP exporter does.  The
clock runs from the first send until ``/api/v1/status`` reports ``points_committed == N``; the
row counts are then checked with SQL.  Where VictoriaMetrics is installed the same points
(converted the way the Collector's Prometheus exporters name them) go to its Prometheus text
import API in the same run, by the same number of client processes, and its rate is measured
the same way.

Everything is built, serialized and compressed before the clock starts, so the clients spend
their CPU in the timed phase only on sending (with ``--client-gzip``, grpcio's gzip per call
too).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workload import HIST_BOUNDS, INGEST_METRICS, INTERVAL_S, NAMESPACE, REPLICAS, SERVICES, kv

HOST = "127.0.0.1"
EXPORT_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
VM_IMPORT_PATH = "/api/v1/import/prometheus"
MIN_BATCH, MAX_BATCH = 1_000, 8_192  # the Collector batch processor's default send size
CLIENT_TIMEOUT_S = 60.0  # per call
MAX_RETRIES = 50  # per request, on UNAVAILABLE / 429 / 503 (the sender's retry loop)
RUN_TIMEOUT_S = 900.0  # whole timed phase of one run
GZIP = True  # --compression; set before the client processes fork
CLIENT_GZIP = False  # --client-gzip: grpcio compresses each message during the run

# -- the workload: bench/workload.py's INGEST_METRICS, cut into batches -----------------------

def _resources() -> list[dict[str, str | int]]:
    """One resource per service instance, with the attributes an SDK plus k8sattributes add."""
    out: list[dict[str, str | int]] = []
    for s, svc in enumerate(SERVICES):
        for r in range(REPLICAS):
            pod = f"{svc}-7d9f8b6c5-{'abcdefgh'[r]}x{s}q{r}"
            out.append({
                "service.name": svc, "service.namespace": NAMESPACE, "service.version": "1.42.0",
                "service.instance.id": f"{svc}-{r}-0f3c2a9e-5b1d-4e7a-9c8f-{s:04d}{r:08d}",
                "deployment.environment.name": "production", "host.name": f"node-{s}{r}",
                "host.arch": "amd64", "os.type": "linux", "process.pid": 1 + s * 10 + r,
                "process.runtime.name": "OpenJDK Runtime Environment",
                "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "java",
                "telemetry.sdk.version": "1.44.1", "k8s.namespace.name": NAMESPACE,
                "k8s.pod.name": pod, "k8s.node.name": f"node-{s}{r}",
                "cloud.region": "eu-west-1",
            })
    return out


@dataclass(frozen=True)
class Workload:
    points: int
    base_ns: int  # time of tick 0
    sizes: tuple[int, ...]  # points per request
    series_per_tick: int
    kinds: dict[str, int]  # points per metric kind
    vm_samples: int  # Prometheus samples the same points become
    vm_series: int

    @property
    def ticks(self) -> int:
        return -(-self.points // self.series_per_tick)


def _layout() -> list[tuple[int, int, int]]:
    """(resource, metric, combo) of every series, in the order one collection emits them."""
    order: list[tuple[int, int, int]] = []
    for res in range(len(SERVICES) * REPLICAS):
        for m, spec in enumerate(INGEST_METRICS):
            order.extend((res, m, c) for c in range(len(spec.combos)))
    return order


def _batch_sizes(total: int, rng: random.Random) -> list[int]:
    """Half full 8,192-point batches (size trigger), half 1,000..8,191 (timeout trigger)."""
    sizes: list[int] = []
    left = total
    while left > 0:
        if left <= MAX_BATCH:
            if left < MIN_BATCH and sizes and sizes[-1] + left > MAX_BATCH:
                both = sizes.pop() + left
                sizes += [both // 2, both - both // 2]
            elif left < MIN_BATCH and sizes:
                sizes[-1] += left
            else:
                sizes.append(left)
            break
        size = MAX_BATCH if rng.random() < 0.5 else rng.randint(MIN_BATCH, MAX_BATCH - 1)
        sizes.append(size)
        left -= size
    return sizes


def make_workload(points: int, seed: int) -> Workload:
    layout = _layout()
    per_tick = len(layout)
    kinds = {"sum": 0, "gauge": 0, "histogram": 0}
    samples = 0
    for p in range(points):
        kind = INGEST_METRICS[layout[p % per_tick][1]].kind
        kinds[kind] += 1
        samples += len(HIST_BOUNDS) + 3 if kind == "histogram" else 1
    ticks = -(-points // per_tick)
    vm_series = 0
    for _res, m, _c in layout[:min(points, per_tick)]:
        vm_series += len(HIST_BOUNDS) + 3 if INGEST_METRICS[m].kind == "histogram" else 1
    # Ticks end two minutes ago: inside VictoriaMetrics' retention and past its query
    # latency offset, so a count query sees every sample.
    base_ns = (int(time.time()) - 120 - ticks * INTERVAL_S) * 10**9
    return Workload(points, base_ns, tuple(_batch_sizes(points, random.Random(seed))),
                    per_tick, kinds, samples, vm_series)


# -- building the requests (in a pool, before any server starts) -------------------------------

_BUILD: dict[str, Any] = {}


def _build_init() -> None:
    from opentelemetry.proto.metrics.v1 import metrics_pb2
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    resources = _resources()
    _BUILD["resources"] = [
        Resource(attributes=[kv(k, v) for k, v in r.items()]).SerializeToString()
        for r in resources]
    # Per metric and combo: a data point holding only the attributes, serialized; each point
    # merges it and sets its own times and value.
    point_type = {"sum": metrics_pb2.NumberDataPoint, "gauge": metrics_pb2.NumberDataPoint,
                  "histogram": metrics_pb2.HistogramDataPoint}
    _BUILD["attr_points"] = [
        [point_type[spec.kind](attributes=[kv(k, v) for (k, _), v in zip(spec.dims, combo)]
                               ).SerializeToString() for combo in spec.combos]
        for spec in INGEST_METRICS]
    # Prometheus side, as the Collector's prometheusremotewrite exporter names things: job
    # and instance from the resource, attribute names with dots as underscores.
    labels = []
    for spec in INGEST_METRICS:
        keys = [re.sub(r"[^a-zA-Z0-9_]", "_", k) for k, _ in spec.dims]
        labels.append([",".join(f'{k}="{v}"' for k, v in zip(keys, combo))
                       for combo in spec.combos])
    _BUILD["labels"] = labels
    _BUILD["res_labels"] = [
        f'job="{r["service.namespace"]}/{r["service.name"]}",instance="{r["service.instance.id"]}"'
        for r in resources]
    _BUILD["layout"] = _layout()


def _point_values(res: int, m: int, combo: int, tick: int) -> tuple[int, float, list[int]]:
    """Deterministic values: a cumulative int, a double, and per-bucket histogram counts."""
    h = (res * 7919 + m * 104729 + combo * 1299709) % 1_000_003
    cumulative = h % 1000 + tick * (1 + h % 13)
    double = ((h * 31 + tick * 17) % 10_000) / 100.0
    buckets = [(h >> (i % 16)) % 5 + tick * ((i + h) % 3) for i in range(len(HIST_BOUNDS) + 1)]
    return cumulative, double, buckets


def _build_request(args: tuple[int, int, int]) -> tuple[bytes, bytes, bytes]:
    """Points [first, first + count) as (OTLP request bytes, the same gzipped, gzipped
    Prometheus text)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    first, count, base_ns = args
    layout, attr_points = _BUILD["layout"], _BUILD["attr_points"]
    labels, res_labels = _BUILD["labels"], _BUILD["res_labels"]
    per_tick = len(layout)
    start_ns = base_ns - 3_600 * 10**9  # the SDK started an hour before tick 0
    request = ExportMetricsServiceRequest()
    text: list[str] = []
    group: tuple[int, int] | None = None
    scope_key: tuple[str, str] | None = None
    current_metric = -1
    rm: Any = None
    sm: Any = None
    data: Any = None
    for p in range(first, first + count):
        tick = p // per_tick
        res, m, combo = layout[p % per_tick]
        spec = INGEST_METRICS[m]
        t_ns = base_ns + tick * INTERVAL_S * 10**9
        if group != (tick, res):  # a new collection of one SDK: a new ResourceMetrics
            group, scope_key, current_metric = (tick, res), None, -1
            rm = request.resource_metrics.add()
            rm.resource.MergeFromString(_BUILD["resources"][res])
            rm.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        if scope_key != spec.scope:
            scope_key, current_metric = spec.scope, -1
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version = spec.scope
        if current_metric != m:
            current_metric = m
            metric = sm.metrics.add()
            metric.name, metric.unit, metric.description = spec.name, spec.unit, spec.description
            data = getattr(metric, spec.kind)
            if spec.kind != "gauge":
                data.aggregation_temporality = 2  # CUMULATIVE
            if spec.kind == "sum":
                data.is_monotonic = spec.monotonic
        cumulative, double, buckets = _point_values(res, m, combo, tick)
        dp = data.data_points.add()
        dp.MergeFromString(attr_points[m][combo])
        dp.time_unix_nano = t_ns
        name, lbl = spec.prom, f"{res_labels[res]},{labels[m][combo]}"
        ts_ms = t_ns // 1_000_000
        if spec.kind == "histogram":
            dp.start_time_unix_nano = start_ns
            total = sum(buckets)
            dp.count, dp.sum = total, total * 0.042
            dp.min, dp.max = 0.001, 9.5
            dp.bucket_counts.extend(buckets)
            dp.explicit_bounds.extend(HIST_BOUNDS)
            running = 0
            for bound, n in zip((*HIST_BOUNDS, "+Inf"), buckets):
                running += n
                text.append(f'{name}_bucket{{{lbl},le="{bound}"}} {running} {ts_ms}\n')
            text.append(f"{name}_sum{{{lbl}}} {total * 0.042!r} {ts_ms}\n")
            text.append(f"{name}_count{{{lbl}}} {total} {ts_ms}\n")
            continue
        if spec.kind == "sum":
            dp.start_time_unix_nano = start_ns
        if spec.is_int:
            value: int | float = cumulative if spec.monotonic else cumulative % 500
            dp.as_int = int(value)
        else:
            value = double
            dp.as_double = double
        text.append(f"{name}{{{lbl}}} {value!r} {ts_ms}\n")
    otlp = request.SerializeToString()
    # level 6: what grpc core and grpc-go (the Collector) use for gzip
    return otlp, gzip.compress(otlp, 6, mtime=0), gzip.compress("".join(text).encode(), 6,
                                                                 mtime=0)


def build_payloads(work: Workload, clients: int) -> tuple[
        list[list[bytes]], list[list[bytes]], list[list[bytes]], list[list[int]]]:
    """Requests dealt round-robin to the clients: OTLP bytes, the same gzipped, VM bodies,
    points of each."""
    jobs, first = [], 0
    for size in work.sizes:
        jobs.append((first, size, work.base_ns))
        first += size
    with mp.get_context("fork").Pool(os.cpu_count() or 2, initializer=_build_init) as pool:
        built = pool.map(_build_request, jobs, chunksize=4)
    otlp: list[list[bytes]] = [[] for _ in range(clients)]
    otlp_gz: list[list[bytes]] = [[] for _ in range(clients)]
    vm: list[list[bytes]] = [[] for _ in range(clients)]
    counts: list[list[int]] = [[] for _ in range(clients)]
    for i, ((o, g, v), size) in enumerate(zip(built, work.sizes)):
        otlp[i % clients].append(o)
        otlp_gz[i % clients].append(g)
        vm[i % clients].append(v)
        counts[i % clients].append(size)
    return otlp, otlp_gz, vm, counts


# -- client processes --------------------------------------------------------------------------

@dataclass
class ClientReport:
    index: int
    points: int = 0
    requests: int = 0
    retries: int = 0
    rejected: int = 0
    cpu_s: float = 0.0
    done_at: float = 0.0
    error: str | None = None

    def count(self, reply: bytes | None, points: int) -> None:
        """One answered export: its points, and those its partial_success rejected."""
        if reply:
            from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
                ExportMetricsServiceResponse,
            )
            response = ExportMetricsServiceResponse.FromString(reply)
            self.rejected += response.partial_success.rejected_data_points
        self.points += points
        self.requests += 1

    def finish(self, cpu0: float) -> None:
        self.done_at = time.monotonic()
        self.cpu_s = _cpu() - cpu0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _otlp_client(index: int, target: str, payloads: list[bytes], counts: list[int],
                 go: Any, results: Any) -> None:
    import grpc

    report = ClientReport(index)
    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    try:
        channel = grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
            compression=grpc.Compression.Gzip if GZIP else grpc.Compression.NoCompression)
        grpc.channel_ready_future(channel).result(timeout=30)
        export = channel.unary_unary(EXPORT_METHOD)  # no serializers: bytes in, bytes out
        results.put(("ready", index))
        if not go.wait(600):
            raise RuntimeError("never told to start")
        cpu0 = _cpu()
        for body, points in zip(payloads, counts):
            for attempt in range(MAX_RETRIES + 1):
                try:
                    reply = export(body, timeout=CLIENT_TIMEOUT_S)
                    break
                except grpc.RpcError as exc:
                    if exc.code() not in retryable or attempt == MAX_RETRIES:
                        raise
                    report.retries += 1
                    time.sleep(min(1.0, 0.05 * 2 ** attempt))
            report.count(reply, points)
        report.finish(cpu0)
        channel.close()
    except Exception as exc:  # reported to the parent, which fails the run
        report.error = f"{type(exc).__name__}: {exc}"
    results.put(("done", report))


def _h2_client(index: int, target: str, payloads: list[bytes], counts: list[int],
               go: Any, results: Any) -> None:
    """The Collector's exporter on the wire: each message already gzipped (``GZIP``) and sent
    as one gRPC message with the compressed flag, one call at a time, retrying what the
    Collector retries (after RetryInfo's delay when the server gives one) on a new
    connection if the old one is lost."""
    from grpc_h2 import Channel, GrpcError

    report = ClientReport(index)
    host, port = target.rsplit(":", 1)
    try:
        channel = Channel(host, int(port))
        results.put(("ready", index))
        if not go.wait(600):
            raise RuntimeError("never told to start")
        cpu0 = _cpu()
        for body, points in zip(payloads, counts):
            for attempt in range(MAX_RETRIES + 1):
                try:
                    reply = channel.unary(EXPORT_METHOD, body, GZIP, CLIENT_TIMEOUT_S)
                    break
                except GrpcError as exc:
                    if not exc.retryable or attempt == MAX_RETRIES:
                        raise
                    report.retries += 1
                    time.sleep(exc.retry_after if exc.retry_after is not None
                               else min(1.0, 0.05 * 2 ** attempt))
                    if exc.connection_lost:
                        channel.close()
                        channel = Channel(host, int(port))
            report.count(reply, points)
        report.finish(cpu0)
        channel.close()
    except Exception as exc:  # reported to the parent, which fails the run
        report.error = f"{type(exc).__name__}: {exc}"
    results.put(("done", report))


def _vm_client(index: int, target: str, payloads: list[bytes], counts: list[int],
               go: Any, results: Any) -> None:
    report = ClientReport(index)
    host, port = target.rsplit(":", 1)
    headers = {"Content-Type": "text/plain"}
    if GZIP:
        headers["Content-Encoding"] = "gzip"
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT_S)
        conn.connect()
        results.put(("ready", index))
        if not go.wait(600):
            raise RuntimeError("never told to start")
        cpu0 = _cpu()
        for body, points in zip(payloads, counts):
            for attempt in range(MAX_RETRIES + 1):
                conn.request("POST", VM_IMPORT_PATH, body, headers)
                reply = conn.getresponse()
                text = reply.read()
                if reply.status in (200, 204):
                    break
                if reply.status not in (429, 503) or attempt == MAX_RETRIES:
                    raise RuntimeError(f"HTTP {reply.status}: {text[:200]!r}")
                report.retries += 1
                time.sleep(min(1.0, 0.05 * 2 ** attempt))
            report.points += points
            report.requests += 1
        report.finish(cpu0)
        conn.close()
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    results.put(("done", report))


# -- servers -----------------------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_call(port: int, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None, timeout: float = 30.0
              ) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body, headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def proc_status(pid: int, field_name: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmHWM, VmRSS) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _stat(path: str) -> tuple[str, list[str]] | None:
    """(comm, fields after comm) of a /proc stat file, or None if it is gone."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    head, rest = text.rsplit(")", 1)
    return head.split("(", 1)[1], rest.split()


def proc_tree(pid: int) -> set[int]:
    """``pid`` and every live process descended from it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(f"/proc/{entry}/stat")):
            parents[int(entry)] = int(st[1][1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def peak_rss(pid: int) -> int:
    """Sum of the peak RSS (VmHWM) of ``pid`` and its live descendants, in bytes."""
    total = 0
    for member in proc_tree(pid):
        try:
            total += proc_status(member, "VmHWM")
        except OSError:
            pass
    return total


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every process it started, reaped or not."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in proc_tree(pid):
        if st := _stat(f"/proc/{member}/stat"):
            utime, stime, cutime, cstime = map(int, st[1][11:15])
            total += (utime + stime + cutime + cstime) / tick
    return total


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s threads by name, digits folded (otlp-grpc_3 -> otlp-grpc_N)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        if st := _stat(f"/proc/{pid}/task/{tid}/stat"):
            name = re.sub(r"\d+", "N", st[0])
            out[name] = out.get(name, 0.0) + (int(st[1][11]) + int(st[1][12])) / tick
    return out


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Service:
    """A server subprocess in its own session, stopped (and killed if need be) on exit."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, port: int, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.tail())
            try:
                if http_call(port, "GET", path, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM, wait; SIGKILL if it does not exit.  Returns seconds to exit."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()
        return time.monotonic() - started


# -- one timed phase ---------------------------------------------------------------------------

@dataclass
class Measure:
    system: str
    points: int
    seconds: float
    peak_rss: int
    server_cpu_s: float
    client_cpu_s: float
    retries: int
    disk_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.points / self.seconds


def machine_busy() -> float:
    """CPU-seconds every process on the machine has used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timed:
    seconds: float  # first send to the last point committed
    server_cpu: float
    last_reply: float  # first send to the last client's last reply
    others_cpu: float  # CPU-seconds of everything but the server, clients and this script
    reports: list[ClientReport]
    threads: dict[str, float]  # the server's CPU-seconds by thread name


def measure(system: str, work: Workload, timed: Timed, peak: int, disk: int,
            **extra: Any) -> Measure:
    return Measure(system, work.points, timed.seconds, peak, timed.server_cpu,
                   sum(r.cpu_s for r in timed.reports), sum(r.retries for r in timed.reports),
                   disk, {"last_reply": timed.last_reply, "others_cpu": timed.others_cpu,
                          "threads": timed.threads, **extra})


def drive(client: Callable[..., None], target: str, payloads: list[list[bytes]],
          counts: list[list[int]], server_pid: int, progress: Callable[[], int], total: int,
          finish: Callable[[], None] | None = None,
          on_start: Callable[[], None] | None = None) -> Timed:
    """Start the clients, release them together, and time until ``progress() >= total``.

    ``finish`` runs once the count is reached and before the clock stops (VictoriaMetrics'
    force flush).
    """
    ctx = mp.get_context("fork")  # the payloads are inherited, not pickled
    results = ctx.Queue()
    go = ctx.Event()
    procs = [ctx.Process(target=client, args=(i, target, payloads[i], counts[i], go, results),
                         name=f"bench-client-{i}", daemon=True) for i in range(len(payloads))]
    reports: dict[int, ClientReport] = {}
    try:
        for p in procs:
            p.start()
        ready = 0
        deadline = time.monotonic() + 120
        while ready < len(procs):
            try:
                msg = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("clients did not connect within 120 s") from None
            if msg[0] == "done":  # a client failed before it was ready
                raise RuntimeError(f"client {msg[1].index} failed: {msg[1].error}")
            ready += 1
        if on_start:
            on_start()
        cpu0, busy0, own0 = proc_cpu(server_pid), machine_busy(), _cpu()
        threads0 = thread_cpu(server_pid)
        t0 = time.monotonic()
        go.set()
        end = None
        last_poll = 0.0
        deadline = t0 + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            all_done = len(reports) == len(procs)
            try:
                msg = results.get(timeout=0.005 if all_done else 0.1)
                reports[msg[1].index] = msg[1]
                if msg[1].error:
                    raise RuntimeError(f"client {msg[1].index} failed: {msg[1].error}")
            except queue.Empty:
                pass
            now = time.monotonic()
            if now - last_poll < (0.005 if len(reports) == len(procs) else 0.1):
                continue
            last_poll = now
            if progress() >= total:
                if finish:
                    finish()
                end = time.monotonic()
                break
        if end is None:
            raise RuntimeError(f"not all {total} points committed within {RUN_TIMEOUT_S:.0f} s "
                               f"(progress {progress()})")
        server_cpu = proc_cpu(server_pid) - cpu0
        threads = {name: cpu - threads0.get(name, 0.0)
                   for name, cpu in thread_cpu(server_pid).items()}
        busy, own = machine_busy() - busy0, _cpu() - own0
        while len(reports) < len(procs) and time.monotonic() < deadline:
            try:
                msg = results.get(timeout=1)
                reports[msg[1].index] = msg[1]
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
        last_reply = max((r.done_at for r in reports.values()), default=end) - t0
        others = busy - server_cpu - own - sum(r.cpu_s for r in reports.values())
        return Timed(end - t0, server_cpu, last_reply, max(0.0, others), list(reports.values()),
                     threads)
    finally:
        go.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
        results.close()
        results.join_thread()


def _check_clients(reports: list[ClientReport], clients: int, total: int) -> None:
    if len(reports) != clients:
        raise RuntimeError(f"only {len(reports)} of {clients} clients reported")
    for r in reports:
        if r.error:
            raise RuntimeError(f"client {r.index} failed: {r.error}")
    sent = sum(r.points for r in reports)
    rejected = sum(r.rejected for r in reports)
    if sent != total or rejected:
        raise RuntimeError(f"sent {sent} of {total} points, {rejected} rejected")


def otel_hms_argv() -> list[str]:
    script = Path(sys.executable).with_name("otel-hms")
    if script.exists():
        return [str(script)]
    found = shutil.which("otel-hms")
    return [found] if found else [sys.executable, "-m", "otel_hms"]


def run_otel_hms(work: Workload, payloads: list[list[bytes]], counts: list[list[int]],
                 tmp: Path, py_spy: str | None, py_spy_args: str | None = None,
                 server_args: str | None = None) -> Measure:
    grpc_port, http_port, api_port = free_ports(3)
    db = tmp / "otel-hms.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_HMS_")}
    argv = otel_hms_argv() + [
        "serve", "--db", str(db), "--otlp-grpc", f"{HOST}:{grpc_port}",
        "--otlp-http", f"{HOST}:{http_port}", "--api", f"{HOST}:{api_port}",
        "--log-level", "warning", *(server_args or "").split()]
    server = Service("otel-hms", argv, tmp / "otel-hms.log", env)
    spy: subprocess.Popen[bytes] | None = None
    try:
        server.wait_ready(api_port, "/healthz")
        idle_rss = proc_status(server.pid, "VmRSS")

        def committed() -> int:
            status, body = http_call(api_port, "GET", "/api/v1/status")
            if status != 200:
                raise RuntimeError(f"/api/v1/status answered {status}: {body[:200]!r}")
            return int(json.loads(body)["writer"]["points_committed"])

        def start_spy() -> None:
            nonlocal spy
            if py_spy:
                fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(
                    Path(py_spy).suffix, "raw")
                exe = Path(sys.executable).with_name("py-spy")
                spy = subprocess.Popen(
                    [str(exe) if exe.exists() else "py-spy", "record", "--pid",
                     str(server.pid), "--output", py_spy, "--format", fmt, "--rate", "100",
                     "--threads", *(py_spy_args or "--nonblocking").split()],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(1.0)  # let it attach before the clock starts

        timed = drive(
            _otlp_client if CLIENT_GZIP else _h2_client, f"{HOST}:{grpc_port}", payloads,
            counts, server.pid, committed, work.points, on_start=start_spy)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        _check_clients(timed.reports, len(payloads), work.points)
        stored = _verify_otel_hms(api_port, work)
        peak = peak_rss(server.pid)
        status = json.loads(http_call(api_port, "GET", "/api/v1/status")[1])
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(10)
        stop_s = server.stop()
    return measure("otel-hms", work, timed, peak, dir_bytes(tmp), idle_rss=idle_rss,
                   rows=stored, commits=status["writer"]["commits"], stop_s=stop_s)


def _verify_otel_hms(api_port: int, work: Workload) -> int:
    sql = ("SELECT (SELECT count(*) FROM points_sum), (SELECT count(*) FROM points_gauge), "
           "(SELECT count(*) FROM points_histogram), (SELECT count(*) FROM series)")
    status, body = http_call(api_port, "POST", "/api/v1/sql", json.dumps({"sql": sql}).encode(),
                             {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"SQL check failed ({status}): {body[:300]!r}")
    sums, gauges, hists, series = json.loads(body)["rows"][0]
    want = (work.kinds["sum"], work.kinds["gauge"], work.kinds["histogram"],
            min(work.points, work.series_per_tick))
    if (sums, gauges, hists, series) != want:
        raise RuntimeError(f"SQL check: stored (sum, gauge, histogram, series) = "
                           f"{(sums, gauges, hists, series)}, sent {want}")
    return int(sums + gauges + hists)


def find_vm(given: str | None) -> str | None:
    if given:
        return given
    for candidate in ("/usr/bin/victoria-metrics", shutil.which("victoria-metrics"),
                      shutil.which("victoria-metrics-prod")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def vm_version(binary: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout and binary.startswith("/usr/bin/"):
            return out.stdout.split("+")[0]
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_vm(binary: str, work: Workload, payloads: list[list[bytes]], counts: list[list[int]],
           tmp: Path) -> Measure:
    (port,) = free_ports(1)
    data = tmp / "vm-data"
    argv = [binary, f"-httpListenAddr={HOST}:{port}", f"-storageDataPath={data}",
            "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=WARN"]
    server = Service("victoria-metrics", argv, tmp / "vm.log", dict(os.environ))
    try:
        server.wait_ready(port, "/health")
        idle_rss = proc_status(server.pid, "VmRSS")
        rows = re.compile(rb"^vm_rows_added_to_storage_total (\d+)", re.M)

        def added() -> int:
            status, body = http_call(port, "GET", "/metrics")
            found = rows.search(body)
            if status != 200 or not found:
                raise RuntimeError(f"VM /metrics answered {status} without the row counter")
            return int(found.group(1))

        def flush() -> None:
            http_call(port, "GET", "/internal/force_flush", timeout=120)

        timed = drive(
            _vm_client, f"{HOST}:{port}", payloads, counts, server.pid, added, work.vm_samples,
            finish=flush)
        _check_clients(timed.reports, len(payloads), work.points)
        samples, series = _verify_vm(port, work)
        peak = peak_rss(server.pid)
    finally:
        server.stop()
    return measure("VictoriaMetrics", work, timed, peak, dir_bytes(data), idle_rss=idle_rss,
                   samples=samples, series=series)


def _verify_vm(port: int, work: Workload) -> tuple[int, int]:
    from urllib.parse import urlencode

    end_s = work.base_ns // 10**9 + work.ticks * INTERVAL_S + 1
    window = work.ticks * INTERVAL_S + 60
    query = urlencode({"query": f'sum(count_over_time({{__name__=~".+"}}[{window}s]))',
                       "time": str(end_s)})
    status, body = http_call(port, "GET", f"/api/v1/query?{query}", timeout=300)
    result = json.loads(body)["data"]["result"] if status == 200 else None
    samples = int(float(result[0]["value"][1])) if result else 0
    status, body = http_call(port, "GET", "/api/v1/series/count", timeout=300)
    series = int(json.loads(body)["data"][0]) if status == 200 else -1
    if samples != work.vm_samples:
        raise RuntimeError(f"VM check: {samples} samples queryable, sent {work.vm_samples}")
    return samples, series


# -- report ------------------------------------------------------------------------------------

def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def rate(n: float) -> str:
    return f"{n:,.0f}"


def describe_run(m: Measure, verbose: bool = False) -> str:
    cores = m.server_cpu_s / m.seconds
    line = (f"  {m.system:<16} {rate(m.rate):>10} points/s  {m.seconds:6.2f} s  "
            f"peak RSS {mb(m.peak_rss):>9} (idle {mb(m.extra['idle_rss'])})  "
            f"server CPU {m.server_cpu_s:5.1f} s ({cores:.2f} cores)  "
            f"clients CPU {m.client_cpu_s:4.1f} s  last reply {m.extra['last_reply']:.2f} s  "
            f"disk {mb(m.disk_bytes)}")
    if "samples" in m.extra:
        line += f"  ({rate(m.extra['samples'] / m.seconds)} samples/s)"
    if m.retries:
        line += f"  retries {m.retries}"
    if verbose and "commits" in m.extra:
        line += f"  commits {m.extra['commits']}"
    if verbose:
        busy = sorted(m.extra["threads"].items(), key=lambda kv: -kv[1])
        line += "\n  " + " " * 16 + " server CPU by thread: " + ", ".join(
            f"{name} {cpu:.1f} s" for name, cpu in busy if cpu >= 0.05)
    others = m.extra["others_cpu"] / m.seconds
    if others > 0.1:
        line += f"\n  {'':<16} WARNING: other processes used {others:.2f} cores meanwhile"
    return line


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        if found:
            model = found.group(1)
    except OSError:
        pass
    return f"{os.cpu_count()} CPU ({model}), Linux {platform.release()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for pkg in ("otel-hms", "duckdb", "grpcio", "protobuf", "pyarrow"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def _compression_words() -> str:
    if not GZIP:
        return "uncompressed"
    if CLIENT_GZIP:
        return "gzip by grpcio in the clients during the run"
    return "gzipped ahead of time (grpc-encoding gzip)"


def summary(work: Workload, clients: int, ours: list[Measure], vm: list[Measure],
            vm_ver: str | None) -> str:
    def med(values: Iterator[float]) -> float:
        return statistics.median(list(values))

    o_rate = med(m.rate for m in ours)
    o_rss = med(m.peak_rss for m in ours)
    o_cpu = med(m.server_cpu_s / m.points * 1e6 for m in ours)
    sizes = sorted(work.sizes)
    lines = [
        f"Ingest benchmark, {len(ours)} runs of {work.points:,} data points: "
        f"{len(work.sizes)} OTLP/gRPC requests of {sizes[0]:,}..{sizes[-1]:,} points "
        f"(median {int(statistics.median(sizes)):,}), {_compression_words()}, "
        f"{clients} client processes; "
        f"{min(work.points, work.series_per_tick):,} series, 4 attributes per point, "
        f"{work.kinds['sum']:,} sum / {work.kinds['gauge']:,} gauge / "
        f"{work.kinds['histogram']:,} histogram points. {machine()}; {versions()}.",
        "",
    ]
    head = "| | otel-hms |"
    rule = "|---|---:|"
    if vm:
        head += f" VictoriaMetrics {vm_ver} | otel-hms / VM |"
        rule += "---:|---:|"
    lines += [head, rule]

    def row(label: str, ours_s: str, vm_s: str = "", ratio: str = "") -> None:
        lines.append(f"| {label} | {ours_s} |" + (f" {vm_s} | {ratio} |" if vm else ""))

    all_o = ", ".join(rate(m.rate) for m in ours)
    if vm:
        v_rate = med(m.rate for m in vm)
        v_rss = med(m.peak_rss for m in vm)
        v_cpu = med(m.server_cpu_s / m.points * 1e6 for m in vm)
        row("Data points/s committed, median", rate(o_rate), rate(v_rate),
            f"{o_rate / v_rate:.2f}")
        row("Data points/s, every run", all_o, ", ".join(rate(m.rate) for m in vm))
        row("Peak server RSS (VmHWM), median", mb(o_rss), mb(v_rss), f"{o_rss / v_rss:.1f}")
        row("Server CPU-seconds per 1M points", f"{o_cpu:.1f}", f"{v_cpu:.1f}",
            f"{o_cpu / v_cpu:.1f}")
        row("On disk after the run", mb(med(m.disk_bytes for m in ours)),
            mb(med(m.disk_bytes for m in vm)))
    else:
        row("Data points/s committed, median", rate(o_rate))
        row("Data points/s, every run", all_o)
        row("Peak server RSS (VmHWM), median", mb(o_rss))
        row("Server CPU-seconds per 1M points", f"{o_cpu:.1f}")
        row("On disk after the run", mb(med(m.disk_bytes for m in ours)))
    busiest = max(m.extra["others_cpu"] / m.seconds for m in ours + vm)
    if busiest > 0.1:
        lines += ["", f"Other processes on the machine used up to {busiest:.2f} cores during "
                      "a timed phase; these figures understate both systems."]
    if vm:
        lines += ["", f"VictoriaMetrics got the same points as Prometheus text "
                      f"({work.vm_samples:,} samples, {work.vm_series:,} series: each histogram "
                      f"point is {len(HIST_BOUNDS) + 3} samples) on {VM_IMPORT_PATH}"
                      f"{', pre-gzipped' if GZIP else ''}; its clock stops after "
                      "/internal/force_flush."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2_000_000,
                        help="data points per run (default 2,000,000: the series are created "
                        "in the first collections, so shorter runs measure mostly that)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--clients", type=int, default=10,
                        help="concurrent client processes (default 10, as the Collector's "
                        "sending_queue.num_consumers)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the batch sizes")
    parser.add_argument("--compression", choices=("gzip", "none"), default="gzip",
                        help="request compression (default gzip, as the Collector sends); "
                        "'none' takes the clients' gzip CPU off a small machine")
    parser.add_argument("--client-gzip", action="store_true",
                        help="let grpcio gzip each message in the clients during the run "
                        "(the clients' CPU then competes with the server's) instead of "
                        "sending messages gzipped ahead of time")
    parser.add_argument("--no-vm", action="store_true", help="skip VictoriaMetrics")
    parser.add_argument("--vm-bin", help="VictoriaMetrics binary (default: "
                        "/usr/bin/victoria-metrics or victoria-metrics on PATH)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print each server's CPU time by thread")
    parser.add_argument("--py-spy", metavar="FILE", help="record the otel-hms server with "
                        "py-spy during the first run (.svg flamegraph, .json speedscope, "
                        "else raw collapsed stacks); that run is slower")
    parser.add_argument("--py-spy-args", metavar="ARGS", help="extra py-spy record options "
                        "(default --nonblocking; e.g. '--gil' or '--native')")
    parser.add_argument("--server-args", metavar="ARGS", help="extra `otel-hms serve` options, "
                        "e.g. '--decode-workers 0'")
    args = parser.parse_args(argv)
    if args.points < 1 or args.runs < 1 or args.clients < 1:
        parser.error("--points, --runs and --clients must be positive")
    if not args.client_gzip or args.compression == "none":
        try:
            import h2  # noqa: F401  (the clients import it after the fork)
        except ImportError:
            print("Error: the gRPC clients need the h2 package: pip install h2 (or pip "
                  "install -e '.[bench]'), or pass --client-gzip to use grpcio's", file=sys.stderr)
            return 1
    vm_bin = None if args.no_vm else find_vm(args.vm_bin)
    vm_ver = vm_version(vm_bin) if vm_bin else None

    work = make_workload(args.points, args.seed)
    clients = min(args.clients, len(work.sizes))
    started = time.monotonic()
    otlp, otlp_gz, vm_bodies, counts = build_payloads(work, clients)
    otlp_mb = sum(map(len, (b for c in otlp for b in c))) / 2**20
    gz_mb = sum(map(len, (b for c in otlp_gz for b in c))) / 2**20
    vm_mb = sum(map(len, (b for c in vm_bodies for b in c))) / 2**20
    global GZIP, CLIENT_GZIP
    GZIP = args.compression == "gzip"
    CLIENT_GZIP = GZIP and args.client_gzip
    if GZIP and not CLIENT_GZIP:
        otlp = otlp_gz
    del otlp_gz
    if not GZIP:
        vm_bodies = [[gzip.decompress(b) for b in c] for c in vm_bodies]
    print(f"built {len(work.sizes)} requests ({work.points:,} points, "
          f"{min(work.points, work.series_per_tick):,} series, {work.ticks} collections) in "
          f"{time.monotonic() - started:.1f} s: OTLP {otlp_mb:.1f} MiB "
          f"({gz_mb:.1f} MiB gzipped)"
          + (f", VM text {vm_mb:.1f} MiB gzipped" if vm_bin else "")
          + ("; sending uncompressed" if not GZIP else ""), flush=True)
    if not vm_bin and not args.no_vm:
        print("VictoriaMetrics not found (apt-get install victoria-metrics); otel-hms only",
              flush=True)

    ours: list[Measure] = []
    theirs: list[Measure] = []
    for run in range(1, args.runs + 1):
        print(f"run {run}/{args.runs}", flush=True)
        with tempfile.TemporaryDirectory(prefix="otel-hms-bench-") as tmp:
            m = run_otel_hms(work, otlp, counts, Path(tmp),
                             args.py_spy if run == 1 else None, args.py_spy_args,
                             args.server_args)
            ours.append(m)
            print(describe_run(m, args.verbose), flush=True)
        if vm_bin:
            with tempfile.TemporaryDirectory(prefix="vm-bench-") as tmp:
                v = run_vm(vm_bin, work, vm_bodies, counts, Path(tmp))
                theirs.append(v)
                print(describe_run(v, args.verbose), flush=True)
                print(f"  {'otel-hms / VM':<16} {m.rate / v.rate:10.2f}", flush=True)
    print()
    print(summary(work, clients, ours, theirs, vm_ver))
    return 0


if __name__ == "__main__":
    sys.exit(main())
