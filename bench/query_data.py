"""The query benchmark's data: who reports what when, as OTLP and as Prometheus text.

One description of the workload (``workload.QUERY_METRICS``; bench/README.md, "The data")
feeds all three systems: ``otlp_requests`` for otel-hms' decoder and writer, ``prom_lines``
for promtool's OpenMetrics file and VictoriaMetrics' import, so they cannot drift apart.
Values are integers computed from the series and the minute, so every answer can be checked
exactly.
"""

from __future__ import annotations

import datetime as dt
import http.client
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import HOST
from store_fill import fill_store
from workload import (
    DAY,
    HIST_BOUNDS,
    HOUR,
    HTTP_SCOPE,
    MINUTE,
    NAMESPACE,
    QUERY_COUNTER,
    QUERY_HISTOGRAM,
    QUERY_METRICS,
    ROUTES,
    SERVICES,
    MetricSpec,
    kv,
)

# Observations per minute in each of the 15 buckets, before the per-route shift.
HIST_WEIGHTS = (2, 4, 8, 16, 24, 30, 24, 16, 8, 4, 2, 1, 1, 0, 0)


def kind_of(spec: MetricSpec) -> str:
    """``counter`` (the monotonic sum), ``histogram`` or ``gauge``."""
    return "counter" if spec.monotonic else spec.kind


# -- the workload -----------------------------------------------------------------------------

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
        for metric in QUERY_METRICS:
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
        per_instance = {k: sum(len(m.combos) for m in QUERY_METRICS if kind_of(m) == k)
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
    from opentelemetry.proto.metrics.v1 import metrics_pb2
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    resources = [Resource(attributes=[
        kv("service.name", svc), kv("service.namespace", NAMESPACE),
        kv("service.instance.id", iid), kv("host.name", f"node-{n}")]).SerializeToString()
        for n, (svc, iid) in enumerate(work.instance_ids())]
    by_instance: dict[int, dict[str, list[tuple[Series, bytes]]]] = {}
    for s in work.series():
        cls = (metrics_pb2.HistogramDataPoint if s.metric.kind == "histogram"
               else metrics_pb2.NumberDataPoint)
        point = cls(attributes=[kv(k, v) for (k, _), v in zip(s.metric.dims, s.combo)])
        by_instance.setdefault(s.instance, {}).setdefault(s.metric.name, []).append(
            (s, point.SerializeToString()))
    start_ns = (work.origin - HOUR) * 10**9
    for t, gauges, ch in work.times():
        m, t_ns = minute_of(work, t), t * 10**9
        request = ExportMetricsServiceRequest()
        for inst, metrics in by_instance.items():
            rm = request.resource_metrics.add()
            rm.resource.MergeFromString(resources[inst])
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version = HTTP_SCOPE
            for spec in QUERY_METRICS:
                if not (gauges if spec.kind == "gauge" else ch):
                    continue
                metric = sm.metrics.add()
                metric.name, metric.unit = spec.name, spec.unit
                if kind_of(spec) == "counter":
                    metric.sum.aggregation_temporality = CUMULATIVE
                    metric.sum.is_monotonic = True
                    for s, attrs in metrics[spec.name]:
                        number = metric.sum.data_points.add()
                        number.MergeFromString(attrs)
                        number.start_time_unix_nano, number.time_unix_nano = start_ns, t_ns
                        number.as_int = counter_value(s, m)
                elif spec.kind == "histogram":
                    metric.histogram.aggregation_temporality = CUMULATIVE
                    for s, attrs in metrics[spec.name]:
                        hist = metric.histogram.data_points.add()
                        hist.MergeFromString(attrs)
                        hist.start_time_unix_nano, hist.time_unix_nano = start_ns, t_ns
                        buckets = bucket_values(s, m)
                        total = sum(buckets)
                        hist.count, hist.sum, hist.min, hist.max = total, total * 0.05, 0.001, 12.0
                        hist.bucket_counts.extend(buckets)
                        hist.explicit_bounds.extend(HIST_BOUNDS)
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
        labels = [f'job="{NAMESPACE}/{svc}"', f'instance="{iid}"'] + [
            f'{k.replace(".", "_")}="{v}"' for (k, _), v in zip(s.metric.dims, s.combo)]
        prefixes.setdefault(kind_of(s.metric), []).append((s, ",".join(labels)))
    les = [f"{b:g}" for b in HIST_BOUNDS] + ["+Inf"]
    name_c, name_h = QUERY_COUNTER.prom, QUERY_HISTOGRAM.prom
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
