#!/usr/bin/env python3
"""Query benchmark: three dashboard questions to otel-hms, VictoriaMetrics and Prometheus.

Run as ``python bench/query.py [--instances 8] [--days 30] [--runs 5]``; see bench/README.md.

The same data (11,008,000 OTLP data points in 10,240 series by default) goes into each
system: otel-hms through its real decoder and writer (in process, roll-ups built by its own
maintenance code), VictoriaMetrics through ``/api/v1/import/prometheus``, Prometheus through
``promtool tsdb create-blocks-from openmetrics``.  Then each question is asked over HTTP, the
way a dashboard asks it, of all three in the same run:

(a) p99 request duration by route, per minute over 24 h (histogram);
(b) request rate of every counter series over the last hour (instant);
(c) request rate by route, per hour over 30 days (otel-hms answers from its roll-ups).

The answers are compared first (a benchmark of different answers is worthless) and the run
fails if they differ; then each question is timed (a warm-up, then ``--runs`` rounds, systems
in turn) and the medians and ratios printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ingest import (
    HOST,
    ROUTES,
    Service,
    find_vm,
    free_ports,
    http_call,
    machine,
    machine_busy,
    otel_hms_argv,
    proc_cpu,
    proc_status,
    versions,
    vm_version,
)
from ingest import _cpu as own_cpu
from store_fill import fill_store

MINUTE, HOUR, DAY = 60, 3600, 86400
HIST_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Observations per minute in each of the 15 buckets, before the per-route shift.
HIST_WEIGHTS = (2, 4, 8, 16, 24, 30, 24, 16, 8, 4, 2, 1, 1, 0, 0)
SERVICES = ("checkout", "cart", "payment", "catalog")
METHODS = ("GET", "POST", "PUT", "DELETE")
QUERY_TIMEOUT_S = 600.0
REL_TOL = 1e-9  # rates: the same integers divided the same way
QUANTILE_TOL = 1e-6


# -- the workload -----------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSpec:
    """One instrument; ``kind`` is counter, histogram or gauge."""

    name: str
    prom: str  # the name the Collector's Prometheus exporters give it
    kind: str
    unit: str
    dims: tuple[tuple[str, tuple[str | int, ...]], ...]
    is_int: bool = True

    @property
    def combos(self) -> list[tuple[str | int, ...]]:
        return list(product(*(values for _, values in self.dims)))


COUNTER = MetricSpec(
    "http.server.request.count", "http_server_request_count_total", "counter", "{request}",
    (("http.route", ROUTES), ("http.request.method", METHODS),
     ("http.response.status_code", (200, 201, 404, 500))))
HISTOGRAM = MetricSpec(
    "http.server.request.duration", "http_server_request_duration_seconds", "histogram", "s",
    (("http.route", ROUTES), ("http.request.method", ("GET", "POST")),
     ("http.response.status_code", (200, 500))))
GAUGES = (
    MetricSpec("system.cpu.utilization", "system_cpu_utilization_ratio", "gauge", "1",
               (("cpu.mode", ("user", "system", "idle", "iowait", "irq", "softirq", "steal",
                              "nice")), ("cpu.logical_number", tuple(range(8)))), is_int=False),
    MetricSpec("db.client.connection.count", "db_client_connection_count", "gauge",
               "{connection}", (("db.client.connection.state", ("idle", "used")),
                                ("db.client.connection.pool.name",
                                 tuple(f"pool-{i}" for i in range(16))),
                                ("server.address", tuple(f"db-{i}.internal" for i in range(4))))),
    MetricSpec("messaging.kafka.consumer.lag", "messaging_kafka_consumer_lag", "gauge",
               "{message}", (("messaging.destination.name",
                              tuple(f"orders.events.v{i}" for i in range(32))),
                             ("messaging.destination.partition.id", tuple(map(str, range(8)))),
                             ("messaging.consumer.group.name", ("billing", "shipping")))),
    MetricSpec("http.server.active_requests", "http_server_active_requests", "gauge",
               "{request}", (("http.route", ROUTES), ("http.request.method", METHODS),
                             ("server.port", (8080, 8443, 9090, 9443)))),
)
METRICS = (COUNTER, HISTOGRAM, *GAUGES)


@dataclass(frozen=True)
class Series:
    metric: MetricSpec
    instance: int
    combo: tuple[str | int, ...]
    index: int  # among the series of its kind

    @property
    def route(self) -> int:
        return ROUTES.index(str(self.combo[0])) if self.metric.dims[0][0] == "http.route" else 0


@dataclass(frozen=True)
class Workload:
    """Who reports what when.  ``end`` (E) is on an hour boundary, in the past.

    Every series reports once an hour, at minute 59 (E - days - 1 min + k hours), for the
    whole history; the counter and the histogram report every minute on the minute over the
    last 24 hours instead (from E - 24 h to E - 1 min), as an SDK with the default 60 s
    export interval does.
    """

    instances: int
    days: int
    end: int  # unix seconds

    @property
    def origin(self) -> int:
        return self.end - self.days * DAY - MINUTE

    @property
    def dense_from(self) -> int:
        return self.end - DAY

    def instance_ids(self) -> list[tuple[str, str]]:
        return [(SERVICES[i % len(SERVICES)], f"{SERVICES[i % len(SERVICES)]}-{i // 4}")
                for i in range(self.instances)]

    def series(self) -> list[Series]:
        out: list[Series] = []
        for metric in METRICS:
            n = 0
            for inst in range(self.instances):
                for combo in metric.combos:
                    out.append(Series(metric, inst, combo, n))
                    n += 1
        return out

    def times(self) -> Iterator[tuple[int, bool, bool]]:
        """(time, gauges report, counter and histogram report), in time order."""
        hourly = {self.origin + k * HOUR for k in range(self.days * 24 + 1)}
        dense = {self.dense_from + j * MINUTE for j in range(DAY // MINUTE)}
        for t in sorted(hourly | dense):
            yield t, t in hourly, t in dense or (t in hourly and t < self.dense_from)

    def counts(self) -> dict[str, int]:
        """Data points per kind, and the samples Prometheus stores for them."""
        per_instance = {k: sum(len(m.combos) for m in METRICS if m.kind == k)
                        for k in ("counter", "histogram", "gauge")}
        gauge_t = ch_t = 0
        for _, gauges, ch in self.times():
            gauge_t += gauges
            ch_t += ch
        points = {k: n * self.instances * (gauge_t if k == "gauge" else ch_t)
                  for k, n in per_instance.items()}
        samples = (points["counter"] + points["gauge"]
                   + points["histogram"] * (len(HIST_BOUNDS) + 3))
        return {**points, "total": sum(points.values()), "samples": samples,
                "series": sum(per_instance.values()) * self.instances}


def minute_of(work: Workload, t: int) -> int:
    return (t - work.origin) // MINUTE


def counter_value(s: Series, m: int) -> int:
    """Cumulative requests of counter series ``s`` at minute ``m`` (integers, monotonic)."""
    i = s.index
    return 1000 * (i % 7) + (1 + i % 13) * m + (m * (i % 5)) // 7


def bucket_values(s: Series, m: int) -> list[int]:
    """Cumulative observations per bucket (not cumulative over buckets), 15 buckets."""
    shift = s.route % 4
    weights = (0,) * shift + HIST_WEIGHTS[:len(HIST_WEIGHTS) - shift]
    k = 1 + s.index % 3
    return [w * k * m + (m + j + s.index) // 4 for j, w in enumerate(weights)]


def gauge_value(s: Series, m: int) -> float | int:
    if not s.metric.is_int:
        return ((s.index * 31 + m * 17) % 10_000) / 10_000
    return (s.index * 7 + m * 3) % 500


# -- otel-hms: OTLP requests through the real decoder and writer -----------------------------

def otlp_requests(work: Workload) -> Iterator[Any]:
    """One ExportMetricsServiceRequest per reporting time: every instance, every series."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    def kv(key: str, value: str | int) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    resources = [Resource(attributes=[
        kv("service.name", svc), kv("service.namespace", "shop"),
        kv("service.instance.id", iid), kv("host.name", f"node-{n}")]).SerializeToString()
        for n, (svc, iid) in enumerate(work.instance_ids())]
    by_instance: dict[int, dict[str, list[tuple[Series, bytes]]]] = {}
    for s in work.series():
        cls = (metrics_pb2.HistogramDataPoint if s.metric.kind == "histogram"
               else metrics_pb2.NumberDataPoint)
        attrs = cls(attributes=[kv(k, v) for (k, _), v in zip(s.metric.dims, s.combo)])
        by_instance.setdefault(s.instance, {}).setdefault(s.metric.name, []).append(
            (s, attrs.SerializeToString()))
    start_ns = (work.origin - HOUR) * 10**9
    for t, gauges, ch in work.times():
        m, t_ns = minute_of(work, t), t * 10**9
        request = ExportMetricsServiceRequest()
        for inst, metrics in by_instance.items():
            rm = request.resource_metrics.add()
            rm.resource.MergeFromString(resources[inst])
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version = "io.opentelemetry.instrumentation.http", "2.10.0"
            for spec in METRICS:
                if not (gauges if spec.kind == "gauge" else ch):
                    continue
                metric = sm.metrics.add()
                metric.name, metric.unit = spec.name, spec.unit
                if spec.kind == "counter":
                    metric.sum.aggregation_temporality = 2
                    metric.sum.is_monotonic = True
                    for s, attrs in metrics[spec.name]:
                        dp = metric.sum.data_points.add()
                        dp.MergeFromString(attrs)
                        dp.start_time_unix_nano, dp.time_unix_nano = start_ns, t_ns
                        dp.as_int = counter_value(s, m)
                elif spec.kind == "histogram":
                    metric.histogram.aggregation_temporality = 2
                    for s, attrs in metrics[spec.name]:
                        dp = metric.histogram.data_points.add()
                        dp.MergeFromString(attrs)
                        dp.start_time_unix_nano, dp.time_unix_nano = start_ns, t_ns
                        buckets = bucket_values(s, m)
                        total = sum(buckets)
                        dp.count, dp.sum, dp.min, dp.max = total, total * 0.05, 0.001, 12.0
                        dp.bucket_counts.extend(buckets)
                        dp.explicit_bounds.extend(HIST_BOUNDS)
                else:
                    for s, attrs in metrics[spec.name]:
                        dp = metric.gauge.data_points.add()
                        dp.MergeFromString(attrs)
                        dp.time_unix_nano = t_ns
                        value = gauge_value(s, m)
                        if isinstance(value, int):
                            dp.as_int = value
                        else:
                            dp.as_double = value
        yield request


def build_otel_hms(work: Workload, db: Path) -> dict[str, float]:
    """Fill the store, then build its roll-ups with the server's own maintenance pass."""
    from otel_hms.storage.rollups import Maintenance, Retention
    from otel_hms.storage.store import open_store

    stored, fill_s = fill_store(db, otlp_requests(work))
    want = work.counts()["total"]
    if stored != want:
        raise SystemExit(f"otel-hms stored {stored:,} points, {want:,} were sent")
    started = time.perf_counter()
    con = open_store(str(db))
    maintenance = Maintenance(con, Retention(raw=None, minute=None, hour=None))
    maintenance.run_once(dt.datetime.now(dt.UTC))
    maintenance.cur.close()
    con.execute("CHECKPOINT")
    con.close()
    return {"fill_s": fill_s, "rollup_s": time.perf_counter() - started}


# -- Prometheus text: the same points as the Collector's Prometheus exporters name them --------

def prom_lines(work: Workload) -> Iterator[tuple[int, list[str]]]:
    """(time, ``name{labels} value`` lines without the timestamp) per reporting time."""
    instances = work.instance_ids()
    prefixes: dict[str, list[tuple[Series, str]]] = {}
    for s in work.series():
        svc, iid = instances[s.instance]
        labels = [f'job="shop/{svc}"', f'instance="{iid}"'] + [
            f'{k.replace(".", "_")}="{v}"' for (k, _), v in zip(s.metric.dims, s.combo)]
        prefixes.setdefault(s.metric.kind, []).append((s, ",".join(labels)))
    les = [f"{b:g}" for b in HIST_BOUNDS] + ["+Inf"]
    name_c, name_h = COUNTER.prom, HISTOGRAM.prom
    for t, gauges, ch in work.times():
        m = minute_of(work, t)
        lines: list[str] = []
        if ch:
            for s, lbl in prefixes["counter"]:
                lines.append(f"{name_c}{{{lbl}}} {counter_value(s, m)}")
            for s, lbl in prefixes["histogram"]:
                running = 0
                buckets = bucket_values(s, m)
                for le, n in zip(les, buckets):
                    running += n
                    lines.append(f'{name_h}_bucket{{{lbl},le="{le}"}} {running}')
                lines.append(f"{name_h}_sum{{{lbl}}} {running * 0.05!r}")
                lines.append(f"{name_h}_count{{{lbl}}} {running}")
        if gauges:
            for s, lbl in prefixes["gauge"]:
                lines.append(f"{s.metric.prom}{{{lbl}}} {gauge_value(s, m)!r}")
        yield t, lines


def write_prom_data(work: Workload, openmetrics: Path, vm_port: int | None) -> int:
    """Write the OpenMetrics file for promtool and post the same samples to VictoriaMetrics.

    Runs in a child process while otel-hms is being filled.  Returns the samples written.
    """
    conn = http.client.HTTPConnection(HOST, vm_port, timeout=600) if vm_port else None
    body: list[str] = []
    size = samples = 0

    def post() -> None:
        nonlocal size
        if conn is not None and body:
            conn.request("POST", "/api/v1/import/prometheus", "".join(body).encode(),
                         {"Content-Type": "text/plain"})
            reply = conn.getresponse()
            text = reply.read()
            if reply.status not in (200, 204):
                raise RuntimeError(f"VictoriaMetrics import answered {reply.status}: "
                                   f"{text[:200]!r}")
        body.clear()
        size = 0

    with open(openmetrics, "w") as om:
        for t, lines in prom_lines(work):
            samples += len(lines)
            om.write(f" {t}\n".join(lines) + f" {t}\n")
            if conn is not None:
                chunk = f" {t * 1000}\n".join(lines) + f" {t * 1000}\n"
                body.append(chunk)
                size += len(chunk)
                if size > 16 * 2**20:
                    post()
        om.write("# EOF\n")
    post()
    if conn is not None:
        conn.close()
    return samples


# -- the three systems -------------------------------------------------------------------------

@dataclass
class System:
    name: str
    service: Service
    port: int
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, path: str, params: dict[str, str]) -> tuple[float, float, bytes]:
        """(seconds, server CPU-seconds, body) of one GET, timed from send to last byte."""
        cpu0 = proc_cpu(self.service.pid)
        t0 = time.perf_counter()
        status, body = http_call(self.port, "GET", f"{path}?{urlencode(params)}",
                                 timeout=QUERY_TIMEOUT_S)
        took = time.perf_counter() - t0
        cpu = proc_cpu(self.service.pid) - cpu0
        if status != 200:
            raise RuntimeError(f"{self.name} answered {status} to {path}?{urlencode(params)}: "
                               f"{body[:300]!r}")
        return took, cpu, body


def start_otel_hms(db: Path, tmp: Path) -> System:
    grpc_port, otlp_port, api_port = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_HMS_")}
    argv = otel_hms_argv() + [
        "serve", "--db", str(db), "--otlp-grpc", f"{HOST}:{grpc_port}",
        "--otlp-http", f"{HOST}:{otlp_port}", "--api", f"{HOST}:{api_port}",
        "--log-level", "warning", "--retention-raw", "forever",
        "--sql-timeout-seconds", str(QUERY_TIMEOUT_S), "--rollup-interval-seconds", "600"]
    service = Service("otel-hms", argv, tmp / "otel-hms.log", env)
    service.wait_ready(api_port, "/healthz", timeout=300)
    return System("otel-hms", service, api_port)


def start_vm(binary: str, data: Path, tmp: Path) -> System:
    (port,) = free_ports(1)
    argv = [binary, f"-httpListenAddr={HOST}:{port}", f"-storageDataPath={data}",
            "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=WARN",
            f"-search.maxQueryDuration={QUERY_TIMEOUT_S:.0f}s"]
    service = Service("VictoriaMetrics", argv, tmp / "vm.log", dict(os.environ))
    service.wait_ready(port, "/health")
    return System("VictoriaMetrics", service, port)


def start_prometheus(binary: str, data: Path, tmp: Path) -> System:
    (port,) = free_ports(1)
    config = tmp / "prometheus.yml"
    config.write_text("global: {}\nscrape_configs: []\n")
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y", f"--web.listen-address={HOST}:{port}",
            f"--query.timeout={QUERY_TIMEOUT_S:.0f}s", "--query.max-samples=200000000",
            "--log.level=warn"]
    service = Service("Prometheus", argv, tmp / "prometheus.log", dict(os.environ))
    service.wait_ready(port, "/-/ready", timeout=300)
    return System("Prometheus", service, port)


def find_binary(given: str | None, *names: str) -> str | None:
    if given:
        return given
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def prom_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        first = (out.stdout or out.stderr).splitlines()[0]
        return first.split("version ", 1)[1].split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def wait_quiet(systems: list[System], limit_s: float = 600.0) -> None:
    """Wait until no server uses more than 0.05 core over 3 s (VM merges, Prometheus
    compactions and otel-hms' first maintenance pass finish before anything is timed)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = [proc_cpu(s.service.pid) for s in systems]
        time.sleep(3)
        busy = [(proc_cpu(s.service.pid) - b) / 3 for s, b in zip(systems, before)]
        if max(busy) < 0.05:
            return
    print("  note: a server was still busy after waiting; timing anyway", flush=True)


# -- the questions -----------------------------------------------------------------------------

Answer = dict[Any, Any]


@dataclass(frozen=True)
class Question:
    key: str
    title: str
    promql: str
    otel_params: dict[str, str]
    prom_params: dict[str, str]  # besides query
    instant: bool
    expected: int  # values in the answer
    tolerance: float

    def promql_path(self) -> str:
        return "/api/v1/query" if self.instant else "/api/v1/query_range"


def questions(work: Workload) -> list[Question]:
    """Each question in each system's language, on grids that cover the same samples.

    otel-hms buckets are [t, t + step) and count each point's increase since the point
    before it; Prometheus and VictoriaMetrics windows are (T - range, T].  Evaluating them at
    the time of the last point in each otel-hms bucket (T = t + step - 1 min here) puts the
    same samples in each window: Prometheus then needs no extrapolation (a sample sits on
    each window edge) and VictoriaMetrics' previous-sample baseline is the same point.
    """
    e = work.end
    routes = len(ROUTES)
    counters = len(COUNTER.combos) * work.instances
    return [
        Question(
            "a", "p99 by route, per minute, 24 h",
            f"histogram_quantile(0.99, sum by (le, http_route) "
            f"(rate({HISTOGRAM.prom}_bucket[1m])))",
            {"metric": HISTOGRAM.name, "range": "24h", "step": "1m", "agg": "p99",
             "by": "http.route", "end": str(e)},
            {"start": str(e - DAY), "end": str(e - MINUTE), "step": "60"},
            False, routes * DAY // MINUTE, QUANTILE_TOL),
        Question(
            "b", "rate per series, last 1 h",
            f"rate({COUNTER.prom}[1h])",
            {"metric": COUNTER.name, "range": "1h", "step": "1h", "agg": "rate",
             "end": str(e)},
            {"time": str(e - MINUTE)},
            True, counters, REL_TOL),
        Question(
            "c", f"rate by route, per hour, {work.days} days",
            f"sum by (http_route) (rate({COUNTER.prom}[1h]))",
            {"metric": COUNTER.name, "range": f"{work.days}d", "step": "1h", "agg": "rate",
             "by": "http.route", "end": str(e)},
            {"start": str(e - work.days * DAY + HOUR - MINUTE), "end": str(e - MINUTE),
             "step": "3600"},
            False, routes * work.days * 24, REL_TOL),
    ]


def _prom_label_key(labels: dict[str, str], q: Question) -> tuple[str, ...]:
    if q.key == "b":
        return (labels["job"].split("/", 1)[1], labels["http_route"],
                labels["http_request_method"], labels["http_response_status_code"])
    return (labels["http_route"],)


def _otel_label_key(labels: dict[str, str], q: Question) -> tuple[str, ...]:
    if q.key == "b":
        return (labels["service.name"], labels["http.route"], labels["http.request.method"],
                labels["http.response.status_code"])
    return (labels["http.route"],)


def parse_answer(system: str, q: Question, body: bytes) -> Answer:
    """``{(labels…, bucket start in s): value}``; for (b) ``{labels: sorted values}``
    (otel-hms labels of an ungrouped series are its point attributes and service.name, so
    the two replicas of a service share them)."""
    doc = json.loads(body)
    out: Answer = {}
    if system == "otel-hms":
        if q.key != "b" and doc.get("source") == "raw":
            raise RuntimeError(f"otel-hms answered ({q.key}) from raw points, not roll-ups: "
                               "are the roll-ups built?")
        for series in doc["series"]:
            key = _otel_label_key(series["labels"], q)
            for t_ms, v in series["points"]:
                if q.key == "b":
                    out.setdefault(key, []).append(v)
                else:
                    out[(*key, t_ms // 1000)] = v
    else:
        if doc.get("status") != "success":
            raise RuntimeError(f"{system} answered {doc!r:.300}")
        offset = int(q.otel_params["end"]) - int(q.prom_params.get("end",
                                                                    q.prom_params.get("time")))
        step = 60 if q.key == "a" else 3600
        for series in doc["data"]["result"]:
            key = _prom_label_key(series["metric"], q)
            if q.instant:
                out.setdefault(key, []).append(float(series["value"][1]))
                continue
            for t, v in series["values"]:
                out[(*key, int(float(t)) + offset - step)] = float(v)
    if q.key == "b":
        out = {k: sorted(v) for k, v in out.items()}
    return out


def answer_size(answer: Answer) -> int:
    return sum(len(v) if isinstance(v, list) else 1 for v in answer.values())


VM_LOOSE_TOL = 0.02


def compare(q: Question, ours: Answer, theirs: Answer, name: str, loose_before: int = 0
            ) -> float:
    """Largest relative difference; raises if any value differs beyond the tolerance.

    Keys whose time is before ``loose_before`` are held to ``VM_LOOSE_TOL`` only (see
    ``verify``)."""
    if set(ours) != set(theirs):
        missing = sorted(set(ours) ^ set(theirs))[:5]
        raise SystemExit(f"({q.key}) otel-hms and {name} answer different series or times: "
                         f"{len(set(ours) ^ set(theirs))} keys differ, e.g. {missing}")
    worst = 0.0
    for key, mine in ours.items():
        pairs = zip(mine, theirs[key]) if isinstance(mine, list) else [(mine, theirs[key])]
        for a, b in pairs:
            diff = abs(a - b) / max(abs(a), abs(b), 1e-300)
            loose = not isinstance(mine, list) and key[-1] < loose_before
            if not math.isfinite(diff) or diff > (VM_LOOSE_TOL if loose else q.tolerance):
                raise SystemExit(f"({q.key}) otel-hms and {name} disagree at {key}: {a!r} vs "
                                 f"{b!r} (relative difference {diff:.3g}, tolerance "
                                 f"{q.tolerance:g})")
            worst = max(worst, diff)
    return worst


# -- timing ------------------------------------------------------------------------------------

@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    bytes: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def ask(system: System, q: Question) -> tuple[float, float, bytes]:
    if system.name == "otel-hms":
        return system.get("/api/v1/query", q.otel_params)
    params = {"query": q.promql, **q.prom_params}
    if system.name == "VictoriaMetrics":
        params["nocache"] = "1"  # no result cache, and start/end not moved onto the step
    return system.get(q.promql_path(), params)


def verify(systems: list[System], qs: list[Question], work: Workload
           ) -> dict[tuple[str, str], float]:
    """Ask every question once (the warm-up) and compare the answers; fail if they differ."""
    worst: dict[tuple[str, str], float] = {}
    for q in qs:
        answers = {}
        for system in systems:
            took, _, body = ask(system, q)
            answers[system.name] = parse_answer(system.name, q, body)
            size = answer_size(answers[system.name])
            if size != q.expected:
                raise SystemExit(f"({q.key}) {system.name} answered {size} values, "
                                 f"{q.expected} expected")
            print(f"  ({q.key}) {system.name:<16} warm-up {took:7.3f} s, {size} values",
                  flush=True)
        ours = answers.pop("otel-hms")
        for name, theirs in answers.items():
            # VictoriaMetrics' range-query rate() over 1 h windows is not anchored on the
            # sample before each window as its instant rate() is (checked in (b)): its
            # hourly rates differ by up to ~0.2 %; they are held to VM_LOOSE_TOL.
            loose = 2**62 if (name == "VictoriaMetrics" and q.key == "c") else 0
            worst[(q.key, name)] = compare(q, ours, theirs, name, loose)
    return worst


def time_queries(systems: list[System], qs: list[Question], runs: int
                 ) -> tuple[dict[tuple[str, str], Timing], float]:
    """``runs`` rounds; in each, every question to every system (order rotated per round).

    Returns the timings and the cores other processes used meanwhile."""
    timings = {(q.key, s.name): Timing() for q in qs for s in systems}
    servers0 = sum(proc_cpu(s.service.pid) for s in systems)
    busy0, own0, t0 = machine_busy(), own_cpu(), time.monotonic()
    for run in range(runs):
        for q in qs:
            order = systems[run % len(systems):] + systems[:run % len(systems)]
            for system in order:
                took, cpu, body = ask(system, q)
                t = timings[(q.key, system.name)]
                t.seconds.append(took)
                t.cpu.append(cpu)
                t.bytes = len(body)
        print(f"  round {run + 1}/{runs}: " + ", ".join(
            f"({q.key}) " + " / ".join(f"{timings[(q.key, s.name)].seconds[-1]:.3f}"
                                       for s in systems) for q in qs), flush=True)
    wall = time.monotonic() - t0
    servers = sum(proc_cpu(s.service.pid) for s in systems) - servers0
    others = machine_busy() - busy0 - servers - (own_cpu() - own0)
    return timings, max(0.0, others) / wall


# -- report ------------------------------------------------------------------------------------

def report(work: Workload, systems: list[System], qs: list[Question],
           timings: dict[tuple[str, str], Timing], worst: dict[tuple[str, str], float],
           others: float, runs: int, build: dict[str, Any]) -> str:
    names = [s.name for s in systems]
    counts = work.counts()
    lines = [
        f"Query benchmark: {counts['total']:,} data points in {counts['series']:,} series "
        f"({counts['counter']:,} counter, {counts['histogram']:,} histogram, "
        f"{counts['gauge']:,} gauge points; {counts['samples']:,} Prometheus samples), "
        f"{work.days} days ending {dt.datetime.fromtimestamp(work.end, dt.UTC):%Y-%m-%d %H:%M}"
        f" UTC; median of {runs} runs after a warm-up, over HTTP. {machine()}; {versions()}; "
        + ", ".join(f"{s.name} {s.extra.get('version', '')}".strip() for s in systems[1:])
        + ".", ""]
    head = "| question | " + " | ".join(names) + " | " + " | ".join(
        f"otel-hms / {n}" for n in names[1:]) + " |"
    lines += [head, "|---|" + "---:|" * (2 * len(names) - 1)]
    for q in qs:
        ours = timings[(q.key, "otel-hms")].median
        cells = [f"{timings[(q.key, n)].median * 1000:,.0f} ms" for n in names]
        ratios = [f"{ours / timings[(q.key, n)].median:.2f}" for n in names[1:]]
        lines.append(f"| ({q.key}) {q.title} | " + " | ".join(cells + ratios) + " |")
    lines += ["", "Server CPU-seconds per answer (median): " + "; ".join(
        f"({q.key}) " + ", ".join(
            f"{n} {statistics.median(timings[(q.key, n)].cpu):.2f}" for n in names)
        for q in qs)]
    lines += ["Every run (s): " + "; ".join(
        f"({q.key}) " + ", ".join(
            f"{n} " + "/".join(f"{x:.3f}" for x in timings[(q.key, n)].seconds)
            for n in names) for q in qs)]
    lines += ["Answers compared (largest relative difference to otel-hms): " + "; ".join(
        f"({k}) {n} {d:.1e}" for (k, n), d in sorted(worst.items()))]
    if build:
        lines += ["Build: " + ", ".join(f"{k} {v:.0f} s" if isinstance(v, float) else
                                        f"{k} {v}" for k, v in build.items())]
    if others > 0.1:
        lines += ["", f"WARNING: other processes used {others:.2f} cores on average while "
                      "the queries were timed: the machine was shared, figures are noisy."]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------

def build_all(work: Workload, workdir: Path, vm_bin: str | None, promtool: str | None
              ) -> dict[str, Any]:
    """Fill every store under ``workdir``; returns what each step took."""
    db = workdir / "otel-hms.duckdb"
    openmetrics = workdir / "data.om"
    vm = start_vm(vm_bin, workdir / "vm-data", workdir) if vm_bin else None
    took: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        ctx = mp.get_context("fork")
        with ctx.Pool(1) as pool:
            text = pool.apply_async(write_prom_data,
                                    (work, openmetrics, vm.port if vm else None))
            took.update(build_otel_hms(work, db))
            print(f"otel-hms: stored and rolled up in {took['fill_s']:.0f} + "
                  f"{took['rollup_s']:.0f} s", flush=True)
            samples = text.get(3600)
        took["text_s"] = time.perf_counter() - started
        print(f"Prometheus text: {samples:,} samples written"
              + (" and imported into VictoriaMetrics" if vm else "")
              + f" (done {took['text_s']:.0f} s after the start)", flush=True)
        if samples != work.counts()["samples"]:
            raise SystemExit(f"wrote {samples} samples, expected {work.counts()['samples']}")
        if vm:
            http_call(vm.port, "GET", "/internal/force_flush", timeout=600)
    finally:
        if vm:
            vm.service.stop()
    if promtool:
        started = time.perf_counter()
        out = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "--max-block-duration=4374h", "-q",
             "openmetrics", str(openmetrics), str(workdir / "prom-data")],
            capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"promtool failed ({out.returncode}): {out.stderr[-2000:]}")
        took["promtool_s"] = time.perf_counter() - started
        print(f"promtool: blocks created in {took['promtool_s']:.0f} s", flush=True)
    openmetrics.unlink()
    return took


def count_samples(systems: list[System], work: Workload) -> None:
    """Every system holds exactly the samples (points) that were generated."""
    counts = work.counts()
    window = f"{work.days * DAY + 2 * HOUR}s"
    for system in systems:
        if system.name == "otel-hms":
            continue
        held = 0
        names = [COUNTER.prom, *(m.prom for m in GAUGES),
                 *(f"{HISTOGRAM.prom}_{x}" for x in ("bucket", "sum", "count"))]
        for name in names:  # one name at a time: count_over_time drops the name
            _, _, body = system.get("/api/v1/query", {
                "query": f"sum(count_over_time({name}[{window}]))", "time": str(work.end)})
            result = json.loads(body)["data"]["result"]
            held += int(float(result[0]["value"][1])) if result else 0
        if held != counts["samples"]:
            raise SystemExit(f"{system.name} holds {held:,} samples, "
                             f"{counts['samples']:,} were written")
        print(f"  {system.name} holds all {held:,} samples", flush=True)


def wait_rollups(system: System, work: Workload, limit_s: float = 300.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        _, body = http_call(system.port, "GET", "/api/v1/status")
        marks = json.loads(body)["rollups"]["watermarks"]
        if all(marks.get(r) and dt.datetime.fromisoformat(marks[r]).timestamp() >= work.end
               for r in ("1m", "1h")):
            return
        time.sleep(0.5)
    raise SystemExit(f"otel-hms roll-up watermarks did not reach the data's end: {marks}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=8,
                        help="service instances, 1,280 series each (default 8: 10,240 series)")
    parser.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per question "
                        "after one warm-up (default 5)")
    parser.add_argument("--workdir", type=Path, help="keep the stores here and reuse them "
                        "on the next run with the same --instances and --days (default: a "
                        "temporary directory, removed at the end)")
    parser.add_argument("--no-vm", action="store_true", help="skip VictoriaMetrics")
    parser.add_argument("--no-prometheus", action="store_true", help="skip Prometheus")
    parser.add_argument("--vm-bin", help="VictoriaMetrics binary (default victoria-metrics "
                        "on PATH)")
    parser.add_argument("--prometheus-bin", help="prometheus binary (default on PATH)")
    parser.add_argument("--promtool-bin", help="promtool binary (default on PATH)")
    args = parser.parse_args(argv)
    if args.instances < 1 or args.days < 2 or args.runs < 1:
        parser.error("--instances and --runs must be positive, --days at least 2")
    vm_bin = None if args.no_vm else find_vm(args.vm_bin)
    prom_bin = None if args.no_prometheus else find_binary(args.prometheus_bin, "prometheus")
    promtool = None if args.no_prometheus else find_binary(args.promtool_bin, "promtool")
    if not args.no_vm and not vm_bin:
        raise SystemExit("Error: VictoriaMetrics not found; install it (apt-get install -y "
                         "victoria-metrics), pass --vm-bin PATH, or run with --no-vm")
    if not args.no_prometheus and not (prom_bin and promtool):
        raise SystemExit("Error: prometheus/promtool not found; install them (apt-get "
                         "install -y prometheus), pass --prometheus-bin/--promtool-bin, or "
                         "run with --no-prometheus")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="otel-hms-qbench-") as tmp_name:
        workdir = args.workdir or Path(tmp_name)
        workdir.mkdir(parents=True, exist_ok=True)
        return run(args, workdir, vm_bin, prom_bin, promtool)


def run(args: argparse.Namespace, workdir: Path, vm_bin: str | None, prom_bin: str | None,
        promtool: str | None) -> int:
    manifest = workdir / "manifest.json"
    wanted = {"instances": args.instances, "days": args.days, "vm": bool(vm_bin),
              "prometheus": bool(prom_bin)}
    build: dict[str, Any] = {}
    if manifest.exists() and {k: v for k, v in json.loads(manifest.read_text()).items()
                              if k != "end"} == wanted:
        work = Workload(args.instances, args.days, json.loads(manifest.read_text())["end"])
        print(f"reusing the stores in {workdir}", flush=True)
    else:
        for old in ("otel-hms.duckdb", "otel-hms.duckdb.wal", "vm-data", "prom-data"):
            path = workdir / old
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        # The data ends on the hour at least 5 minutes ago: old enough to be rolled up.
        now = int(time.time()) - 5 * MINUTE
        work = Workload(args.instances, args.days, now - now % HOUR)
        c = work.counts()
        print(f"workload: {c['total']:,} data points in {c['series']:,} series, "
              f"{c['samples']:,} Prometheus samples", flush=True)
        build = build_all(work, workdir, vm_bin, promtool)
        manifest.write_text(json.dumps({**wanted, "end": work.end}))
    systems = [start_otel_hms(workdir / "otel-hms.duckdb", workdir)]
    try:
        if vm_bin:
            systems.append(start_vm(vm_bin, workdir / "vm-data", workdir))
            systems[-1].extra["version"] = vm_version(vm_bin)
        if prom_bin:
            systems.append(start_prometheus(prom_bin, workdir / "prom-data", workdir))
            systems[-1].extra["version"] = prom_version(prom_bin)
        wait_rollups(systems[0], work)
        count_samples(systems, work)
        wait_quiet(systems)
        rss = {s.name: proc_status(s.service.pid, "VmRSS") for s in systems}
        print("servers ready, RSS " + ", ".join(f"{n} {v / 2**20:,.0f} MiB"
                                                for n, v in rss.items()), flush=True)
        qs = questions(work)
        worst = verify(systems, qs, work)
        print("answers agree: " + ", ".join(f"({k}) {n} {d:.1e}"
                                            for (k, n), d in sorted(worst.items())), flush=True)
        timings, others = time_queries(systems, qs, args.runs)
    finally:
        for s in systems:
            s.service.stop()
    print()
    print(report(work, systems, qs, timings, worst, others, args.runs, build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
