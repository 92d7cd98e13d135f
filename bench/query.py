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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ingest import (
    HOST,
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
from query_data import Workload, build_otel_hms, write_prom_data
from workload import DAY, HOUR, MINUTE, QUERY_COUNTER, QUERY_GAUGES, QUERY_HISTOGRAM, ROUTES

QUERY_TIMEOUT_S = 600.0
REL_TOL = 1e-9  # rates: the same integers divided the same way
QUANTILE_TOL = 1e-6


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
    counters = len(QUERY_COUNTER.combos) * work.instances
    return [
        Question(
            "a", "p99 by route, per minute, 24 h",
            f"histogram_quantile(0.99, sum by (le, http_route) "
            f"(rate({QUERY_HISTOGRAM.prom}_bucket[1m])))",
            {"metric": QUERY_HISTOGRAM.name, "range": "24h", "step": "1m", "agg": "p99",
             "by": "http.route", "end": str(e)},
            {"start": str(e - DAY), "end": str(e - MINUTE), "step": "60"},
            False, routes * DAY // MINUTE, QUANTILE_TOL),
        Question(
            "b", "rate per series, last 1 h",
            f"rate({QUERY_COUNTER.prom}[1h])",
            {"metric": QUERY_COUNTER.name, "range": "1h", "step": "1h", "agg": "rate",
             "end": str(e)},
            {"time": str(e - MINUTE)},
            True, counters, REL_TOL),
        Question(
            "c", f"rate by route, per hour, {work.days} days",
            f"sum by (http_route) (rate({QUERY_COUNTER.prom}[1h]))",
            {"metric": QUERY_COUNTER.name, "range": f"{work.days}d", "step": "1h", "agg": "rate",
             "by": "http.route", "end": str(e)},
            {"start": str(e - work.days * DAY + HOUR - MINUTE), "end": str(e - MINUTE),
             "step": "3600"},
            False, routes * work.days * 24, REL_TOL),
    ]


def _prom_label_key(labels: dict[str, str], q: Question) -> tuple[str, ...]:
    if q.key == "b":
        return (labels["job"].split("/", 1)[1], labels["instance"], labels["http_route"],
                labels["http_request_method"], labels["http_response_status_code"])
    return (labels["http_route"],)


def _otel_label_key(labels: dict[str, str], q: Question) -> tuple[str, ...]:
    if q.key == "b":
        return (labels["service.name"], labels["service.instance.id"], labels["http.route"],
                labels["http.request.method"],
                labels["http.response.status_code"])
    return (labels["http.route"],)


def parse_answer(system: str, q: Question, body: bytes) -> Answer:
    """``{(labels…, bucket start in s): value}``; for (b) ``{labels: [value]}`` (the
    instant answer has one value per series: otel-hms' ``service.instance.id`` is the
    others' ``instance``)."""
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
        prom_end = q.prom_params.get("end", q.prom_params.get("time"))
        assert prom_end is not None
        offset = int(q.otel_params["end"]) - int(prom_end)
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


def compare(q: Question, ours: Answer, theirs: Answer, name: str, loose: bool = False
            ) -> float:
    """Largest relative difference; raises if any value differs beyond the tolerance
    (``VM_LOOSE_TOL`` when ``loose``, see ``verify``)."""
    if set(ours) != set(theirs):
        missing = sorted(set(ours) ^ set(theirs))[:5]
        raise SystemExit(f"({q.key}) otel-hms and {name} answer different series or times: "
                         f"{len(set(ours) ^ set(theirs))} keys differ, e.g. {missing}")
    worst = 0.0
    for key, mine in ours.items():
        pairs = zip(mine, theirs[key]) if isinstance(mine, list) else [(mine, theirs[key])]
        for a, b in pairs:
            diff = abs(a - b) / max(abs(a), abs(b), 1e-300)
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


def verify(systems: list[System], qs: list[Question]) -> dict[tuple[str, str], float]:
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
            loose = name == "VictoriaMetrics" and q.key == "c"
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
        names = [QUERY_COUNTER.prom, *(m.prom for m in QUERY_GAUGES),
                 *(f"{QUERY_HISTOGRAM.prom}_{x}" for x in ("bucket", "sum", "count"))]
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
        worst = verify(systems, qs)
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
