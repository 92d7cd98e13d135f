"""PromQL over stored OTLP samples against a real Prometheus 2.42 holding the same samples.

One data set, written twice: as OpenMetrics text backfilled into Prometheus with promtool,
and as OTLP exports to a real ``otel-hms serve`` (a gauge and a cumulative counter with
resets, three routes, irregular 7-61 s spacing, names that the OTLP translator leaves as
they are).  Every query goes to both, instant and range; the answers must be the same
bytes (selectors with lookback, offset and @, rate/increase/delta/irate/idelta with their
extrapolation, and the operators over the results).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from conftest import ServerProcess, StartServer
from metric_builders import (
    T0_S,
    exp_metric,
    exp_point,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    sum_metric,
)
from metric_builders import request as otlp_request
from prometheus_server import PrometheusProcess, backfill, request

ROUTES = ("/a", "/b", "/c")
SPAN_S = 3600


Data = dict[str, dict[str, list[tuple[int, float]]]]
BOUNDS = (0.1, 0.5, 1.0, 2.5)
# route -> (milliseconds after T0, per-bucket counts (not cumulative), sum)
Histograms = dict[str, list[tuple[int, list[int], float]]]


def _histograms(seed: int) -> Histograms:
    """Cumulative histograms with explicit buckets, one reset each, 15-45 s apart."""
    rng = random.Random(seed)
    out: Histograms = {}
    for route in ROUTES[:2]:
        t, counts, total, points = 0, [0] * (len(BOUNDS) + 1), 0.0, []
        while t < SPAN_S * 1000:
            if rng.random() < 0.02:
                counts, total = [0] * (len(BOUNDS) + 1), 0.0
            for i in range(len(counts)):
                added = rng.randint(0, 4 - min(i, 3))
                counts[i] += added
                total += added * (BOUNDS[i] if i < len(BOUNDS) else 4.0) * 0.75
            points.append((t, list(counts), round(total, 3)))
            t += rng.randint(15_000, 45_000)
        out[route] = points
    return out


def _histogram_openmetrics(histograms: Histograms) -> list[str]:
    lines = ["# TYPE demo_latency histogram"]
    for route, points in histograms.items():
        labels = f'instance="i-1",job="demo",route="{route}"'
        for t, counts, total in points:
            stamp = f"{T0_S + t // 1000}.{t % 1000:03d}"
            cumulative = 0
            for bound, n in zip((*BOUNDS, float("inf")), counts, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'demo_latency_bucket{{{labels},le="{le}"}} {cumulative} {stamp}')
            lines.append(f"demo_latency_sum{{{labels}}} {total} {stamp}")
            lines.append(f"demo_latency_count{{{labels}}} {cumulative} {stamp}")
    return lines


QUANTILES = (0.5, 0.9, 0.99)


def _summaries(seed: int) -> list[tuple[int, int, float, list[float]]]:
    """One summary: (ms after T0, count, sum, the quantiles' values), 20-40 s apart."""
    rng = random.Random(seed)
    out, t, count, total = [], 0, 0, 0.0
    while t < SPAN_S * 1000:
        added = rng.randint(0, 30)
        count, total = count + added, round(total + added * rng.uniform(0.1, 0.9), 3)
        values = sorted(round(rng.uniform(0.05, 2.5), 3) for _ in QUANTILES)
        out.append((t, count, total, values))
        t += rng.randint(20_000, 40_000)
    return out


def _summary_openmetrics(points: list[tuple[int, int, float, list[float]]]) -> list[str]:
    lines = ["# TYPE demo_rpc_seconds summary"]
    labels = 'instance="i-1",job="demo"'
    for t, count, total, values in points:
        stamp = f"{T0_S + t // 1000}.{t % 1000:03d}"
        lines += [f'demo_rpc_seconds{{{labels},quantile="{q:g}"}} {v} {stamp}'
                  for q, v in zip(QUANTILES, values, strict=True)]
        lines += [f"demo_rpc_seconds_sum{{{labels}}} {total} {stamp}",
                  f"demo_rpc_seconds_count{{{labels}}} {count} {stamp}"]
    return lines


def _summary_metric(points: list[tuple[int, int, float, list[float]]]) -> metrics_pb2.Metric:
    data_points = [metrics_pb2.SummaryDataPoint(
        time_unix_nano=(T0_S * 1000 + t) * 1_000_000,
        start_time_unix_nano=(T0_S * 1000 - 1000) * 1_000_000, count=count, sum=total,
        quantile_values=[metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
                         for q, v in zip(QUANTILES, values, strict=True)])
        for t, count, total, values in points]
    return metrics_pb2.Metric(name="demo_rpc_seconds",
                              summary=metrics_pb2.Summary(data_points=data_points))


def _histogram_metric(histograms: Histograms) -> metrics_pb2.Metric:
    points = []
    for route, series in histograms.items():
        start, previous = -1000, 0
        for t, counts, total in series:
            if sum(counts) < previous:
                start = t - 500
            point = histogram_point({"route": route}, 0, BOUNDS, counts)
            point.sum = total
            point.time_unix_nano = (T0_S * 1000 + t) * 1_000_000
            point.start_time_unix_nano = (T0_S * 1000 + start) * 1_000_000
            points.append(point)
            previous = sum(counts)
    return histogram_metric("demo_latency", points)


def _samples(seed: int) -> Data:
    """route -> (milliseconds after T0, value) for the gauge and the counter (with resets)."""
    rng = random.Random(seed)
    out: Data = {"gauge": {}, "counter": {}, "batch": {}}
    for route in ROUTES:
        t, points = 0, []
        while t < SPAN_S * 1000:
            points.append((t, round(rng.uniform(-5, 50), 3)))
            t += rng.randint(7_000, 61_000)
        out["gauge"][route] = points
        t, value, counts = 0, 0.0, []
        while t < SPAN_S * 1000:
            value = 0.0 if rng.random() < 0.03 else value + rng.randint(0, 20)
            counts.append((t, value))
            t += rng.randint(7_000, 61_000)
        out["counter"][route] = counts
    # a timestamp gauge for the date functions: times across months, years, leap days
    out["batch"] = {"": [(t, float(rng.choice([951782400, 1709251199, 1709251200, 1735689599,
                                                1767225600, 2147483647]) + rng.randint(0, 86_400)))
                         for t in range(0, SPAN_S * 1000, 120_000)]}
    return out


def _openmetrics(data: Data, histograms: Histograms,
                 summaries: list[tuple[int, int, float, list[float]]]) -> str:
    lines = ["# TYPE demo_gauge gauge"]
    for route, points in data["gauge"].items():
        labels = f'{{instance="i-1",job="demo",route="{route}"}}'
        lines += [f"demo_gauge{labels} {v} {T0_S + t // 1000}.{t % 1000:03d}"
                  for t, v in points]
    lines.append("# TYPE demo_batch_time gauge")
    lines += [f'demo_batch_time{{instance="i-1",job="demo"}} {v} {T0_S + t // 1000}.{t % 1000:03d}'
              for t, v in data["batch"][""]]
    lines.append("# TYPE demo_requests counter")
    for route, points in data["counter"].items():
        labels = f'{{instance="i-1",job="demo",route="{route}"}}'
        lines += [f"demo_requests_total{labels} {v} {T0_S + t // 1000}.{t % 1000:03d}"
                  for t, v in points]
    return "\n".join(lines + _histogram_openmetrics(histograms)
                     + _summary_openmetrics(summaries) + ["# EOF", ""])


def _point(route: str, t_ms: int, value: float, start_ms: int | None = None
           ) -> metrics_pb2.NumberDataPoint:
    point = number_point({"route": route}, 0, value)
    point.time_unix_nano = (T0_S * 1000 + t_ms) * 1_000_000
    if start_ms is not None:
        point.start_time_unix_nano = (T0_S * 1000 + start_ms) * 1_000_000
    return point


def _export(server: ServerProcess, data: Data, histograms: Histograms,
            summaries: list[tuple[int, int, float, list[float]]]) -> None:
    gauges, counters = [], []
    for route, points in data["gauge"].items():
        gauges += [_point(route, t, v) for t, v in points]
    for route, points in data["counter"].items():
        start, previous = -1000, 0.0
        for t, v in points:
            if v < previous:
                start = t - 500  # a reset: the counter restarted
            counters.append(_point(route, t, v, start))
            previous = v
    batch = [_point("", t, v) for t, v in data["batch"][""]]
    for point in batch:
        del point.attributes[:]
    server.export(otlp_request(gauge_metric("demo_gauge", gauges), gauge_metric(
                                   "demo_batch_time", batch),
                               sum_metric("demo_requests_total", counters),
                               _histogram_metric(histograms), _summary_metric(summaries),
                               service="demo",
                               resource={"service.instance.id": "i-1"}))


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data, histograms, summaries = _samples(14), _histograms(14), _summaries(14)
    folder = Path(tmp_path_factory.mktemp("prometheus"))
    prometheus = PrometheusProcess(folder, backfill(_openmetrics(data, histograms, summaries),
                                                    folder))
    ours = ServerProcess(folder / "store.duckdb", [], {}, folder / "serve.log")
    try:
        ours.wait_ready()
        _export(ours, data, histograms, summaries)
        yield prometheus.url, f"{ours.api_url}/prometheus"
    finally:
        ours.kill()
        prometheus.stop()


T = T0_S + 1800
QUERIES = [
    "demo_gauge", "demo_requests_total", "demo_gauge offset 1m", "demo_gauge offset -5m",
    f"demo_gauge @ {T0_S + 600}", "demo_gauge @ start()", "demo_gauge @ end()",
    'demo_gauge{route=~"/a|/c"}', 'demo_gauge{route!="/a"}', '{__name__=~"demo_.*"}',
    'demo_gauge{route!~"/(a|b)"}', "rate(demo_requests_total[5m])",
    "increase(demo_requests_total[1m])", "rate(demo_requests_total[90s] offset 5m)",
    "delta(demo_gauge[5m])", "irate(demo_requests_total[2m])", "idelta(demo_gauge[2m])",
    f"rate(demo_requests_total[10m] @ {T0_S + 900})", "demo_gauge * 2 - 1",
    "-demo_gauge", "demo_gauge > 20", "demo_gauge > bool 20", "30 < demo_gauge",
    "demo_gauge + demo_requests_total", "demo_gauge / on(route) demo_requests_total",
    "demo_gauge and demo_requests_total > 100", "demo_gauge unless demo_gauge > 10",
    "demo_gauge or vector(1)", "rate(demo_requests_total[5m]) * 60 > 1",
    "demo_gauge % 7", "demo_gauge ^ 2",
    # aggregations, over selectors and over rate (whose output keeps the selector's order)
    "sum(demo_gauge)", "sum by (route) (rate(demo_requests_total[5m]))",
    "sum without (instance) (demo_gauge)", "sum without () (demo_gauge)",
    "avg(demo_gauge)", "avg by (job) (demo_gauge)", "count(demo_gauge)", "min(demo_gauge)",
    "max by (nosuch) (demo_gauge)", "group(demo_gauge)", "stddev(demo_gauge)",
    "stdvar by (job) (demo_gauge)", "topk(2, demo_gauge)", "bottomk(2, demo_gauge)",
    "topk by (route) (1, demo_gauge)", "topk(0, demo_gauge)", "quantile(0.9, demo_gauge)",
    "quantile(-0.5, demo_gauge)", "quantile(1.5, demo_gauge)", "quantile(0.1, demo_gauge)",
    'count_values("v", demo_requests_total > 0)', 'count_values without (route) ("v", demo_gauge)',
    'sum({__name__=~"demo_.*"})', "sum by (__name__) ({__name__=~\"demo_.*\"})",
    "sum(rate(demo_requests_total[5m])) * 60", "avg(demo_gauge) > bool 20",
    "max(demo_gauge) - min(demo_gauge)", "sum(demo_requests_total) / count(demo_requests_total)",
    # functions of range vectors
    "sum_over_time(demo_gauge[5m])", "avg_over_time(demo_gauge[10m])",
    "count_over_time(demo_gauge[3m])", "min_over_time(demo_gauge[5m])",
    "max_over_time(demo_gauge[5m] offset 2m)", "last_over_time(demo_gauge[5m])",
    "present_over_time(demo_gauge[1m])", "stddev_over_time(demo_gauge[10m])",
    "stdvar_over_time(demo_gauge[10m])", "quantile_over_time(0.75, demo_gauge[10m])",
    "quantile_over_time(2, demo_gauge[10m])", "changes(demo_gauge[10m])",
    "resets(demo_requests_total[30m])", "deriv(demo_gauge[10m])",
    "predict_linear(demo_gauge[10m], 600)", "holt_winters(demo_gauge[10m], 0.3, 0.6)",
    "holt_winters(demo_gauge[10m], 1, 0.5)", "holt_winters(demo_gauge[10m], 0.5, 0)",
    "sum by (route) (increase(demo_requests_total[10m]))",
    "max_over_time(demo_gauge[5m]) - min_over_time(demo_gauge[5m])",
    # classic histograms: OTLP explicit buckets as _bucket{le}, _sum, _count
    "demo_latency_bucket", 'demo_latency_bucket{le="0.5"}', 'demo_latency_bucket{le=~"1|\\+Inf"}',
    "demo_latency_count", "demo_latency_sum", "rate(demo_latency_bucket[5m])",
    'demo_latency_bucket{le!="+Inf"} offset 3m',
    "rate(demo_latency_sum[5m]) / rate(demo_latency_count[5m])",
    "sum by (le) (rate(demo_latency_bucket[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(demo_latency_bucket[5m])))",
    "histogram_quantile(0.5, sum by (le) (demo_latency_bucket))",
    'histogram_quantile(0.9, demo_latency_bucket{route="/a"})',
    'histogram_quantile(0.25, rate(demo_latency_bucket{route="/b"}[10m]))',
    "histogram_quantile(0, sum by (le) (demo_latency_bucket))",
    "histogram_quantile(1, sum by (le) (demo_latency_bucket))",
    "histogram_quantile(-1, sum by (le) (demo_latency_bucket))",
    "histogram_quantile(2, sum by (le) (demo_latency_bucket))",
    "histogram_quantile(NaN, sum by (le) (demo_latency_bucket))",
    'histogram_quantile(0.5, sum by (le) (demo_latency_bucket{le!="+Inf"}))',
    # functions of instant vectors (exact ones; the libm ones are compared below)
    "abs(demo_gauge)", "ceil(demo_gauge)", "floor(-demo_gauge)", "sqrt(demo_gauge)",
    "sgn(demo_gauge - 20)", "deg(demo_gauge)", "rad(demo_gauge)", "round(demo_gauge)",
    "round(demo_gauge, 5)", "round(demo_gauge, 0.3)", "clamp(demo_gauge, 0, 30)",
    "clamp(demo_gauge, 30, 0)", "clamp_min(demo_gauge, 10)", "clamp_max(demo_gauge, 10)",
    "timestamp(demo_gauge)", "timestamp(demo_gauge offset 1m)", "timestamp(-demo_gauge)",
    "timestamp((demo_gauge))", 'scalar(demo_gauge{route="/a"})', "scalar(demo_gauge)",
    "sort(demo_gauge)", "sort_desc(demo_gauge)", "absent(demo_gauge)",
    'absent(nosuch{job="a",route=~"x",x="y",x="z",w="v"})', "absent(sum(nosuch))",
    "absent_over_time(demo_gauge[1m])", 'absent_over_time(nosuch{a="b"}[5m])',
    "day_of_month()", "day_of_week(demo_batch_time)", "day_of_year(demo_batch_time)",
    "days_in_month(demo_batch_time)", "hour(demo_batch_time)", "minute(demo_batch_time)",
    "month(demo_batch_time)", "year(demo_batch_time)", "hour()",
    "time() - timestamp(demo_gauge)", "vector(scalar(demo_gauge{route=\"/b\"}))",
    # summaries: x{quantile}, x_sum, x_count
    "demo_rpc_seconds", 'demo_rpc_seconds{quantile="0.9"}', "demo_rpc_seconds_count",
    "rate(demo_rpc_seconds_sum[5m]) / rate(demo_rpc_seconds_count[5m])",
    'max_over_time(demo_rpc_seconds{quantile=~"0.9.*"}[10m])',
    # label_replace, label_join
    'label_replace(demo_gauge, "a", "$1x-${1}x-$$-$", "route", "/(.)")',
    'label_replace(demo_gauge, "x", "$name+${2}", "route", "/(?P<name>.)")',
    'label_replace(demo_gauge, "x", "<$2>", "route", "/(a)|/(b)|/c")',
    'label_replace(demo_gauge, "__name__", "renamed", "route", "/a")',
    'label_replace(demo_gauge, "route", "", "nosuch", "")',
    'label_replace(rate(demo_requests_total[5m]), "job", "x", "route", "/[ab]")',
    'label_replace(demo_gauge, "route", "", "route", ".*")',
    'label_replace(demo_gauge, "x", "y", "route", "(")',
    'label_replace(demo_gauge, "1x", "y", "route", ".*")',
    'label_replace(demo_gauge, "x", "y", "route", "(?<n>a)")',
    'label_join(demo_gauge, "x", ",", "job", "route", "nosuch")',
    'label_join(demo_gauge, "route", "-", "job")', 'label_join(demo_gauge, "job", "")',
    'label_join(demo_gauge, "x", ",", "1a")', 'label_join(demo_gauge, "1x", ",", "job")',
    # subqueries (default step 1 m)
    "max_over_time(rate(demo_requests_total[1m])[5m:30s])",
    "avg_over_time(rate(demo_requests_total[1m])[2m:10s])",
    "max_over_time(rate(demo_requests_total[1m])[5m:])", "count_over_time(vector(1)[5m:])",
    "min_over_time(demo_gauge[10m:1m] offset 2m)", "sum_over_time(sum(demo_gauge)[3m:45s])",
    "rate(demo_requests_total[5m:15s])", "absent_over_time(nosuch[5m:1m])",
    "max_over_time(max_over_time(demo_gauge[2m:20s])[6m:1m])",
    "quantile_over_time(0.5, demo_gauge[7m:23s])",
    f"max_over_time(rate(demo_requests_total[1m])[5m:30s] @ {T0_S + 1200})",
    "avg_over_time(demo_gauge[5m:1m] @ start())", "min_over_time(demo_gauge[5m:] @ end())",
    f"count_over_time(vector(1)[3m:1m] @ {T0_S + 300} offset 30s)",
    f"sum_over_time(demo_gauge[10m:1m] offset 2m @ {T0_S + 900}) + demo_gauge",
    # execution errors
    "topk(1e30, demo_gauge)", "bottomk(-1e20, demo_gauge)", 'count_values("~x", demo_gauge)',
    "demo_gauge + ignoring(route) demo_gauge",
    "{__name__=~\"demo_.*\"} * on(route) group_left {__name__=~\"demo_.*\"}",
    "rate({__name__=~\"demo_.*\"}[5m])",
]


@pytest.mark.parametrize("query", QUERIES)
def test_instant_queries_answer_as_prometheus(both: tuple[str, str], query: str) -> None:
    prometheus, ours = both
    for t in (T, T0_S + 3, T0_S + SPAN_S + 200, T0_S + 1800.5):
        form = {"query": query, "time": str(t)}
        expected = request(f"{prometheus}/api/v1/query", form)
        assert request(f"{ours}/api/v1/query", form) == expected, (query, t)


@pytest.mark.parametrize("query", [q for q in QUERIES if "@ end()" not in q])
def test_range_queries_answer_as_prometheus(both: tuple[str, str], query: str) -> None:
    prometheus, ours = both
    form = {"query": query, "start": str(T0_S - 100), "end": str(T0_S + SPAN_S + 400),
            "step": "37"}
    expected = request(f"{prometheus}/api/v1/query_range", form)
    assert request(f"{ours}/api/v1/query_range", form) == expected, query


LIBM = ["exp(demo_gauge / 10)", "ln(demo_gauge)", "log2(demo_gauge)", "log10(demo_gauge)",
        "sin(demo_gauge)", "cos(demo_gauge)", "tan(demo_gauge)", "asin(demo_gauge / 50)",
        "acos(demo_gauge / 50)", "atan(demo_gauge)", "sinh(demo_gauge / 10)",
        "cosh(demo_gauge / 10)", "tanh(demo_gauge / 10)", "asinh(demo_gauge)",
        "acosh(demo_gauge)", "atanh(demo_gauge / 50)", "exp(demo_gauge * 100)",
        "ln(demo_gauge - demo_gauge)"]


def _close(ours: object, theirs: object) -> bool:
    """Equal JSON but for sample values within 1e-14 relative (Go's math vs the C library's,
    the last bit now and then)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(_close(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(_close, ours, theirs))
    if isinstance(ours, str) and isinstance(theirs, str) and ours != theirs:
        try:
            a, b = float(ours), float(theirs)
        except ValueError:
            return False
        return abs(a - b) <= 1e-14 * max(abs(a), abs(b))
    return ours == theirs


@pytest.mark.parametrize("query", LIBM)
def test_math_functions_answer_as_prometheus_to_the_last_bits(both: tuple[str, str],
                                                               query: str) -> None:
    prometheus, ours = both
    for path, form in [("query", {"query": query, "time": str(T)}),
                       ("query_range", {"query": query, "start": str(T0_S),
                                        "end": str(T0_S + SPAN_S), "step": "61"})]:
        status, body = request(f"{ours}/api/v1/{path}", form)
        expected_status, expected = request(f"{prometheus}/api/v1/{path}", form)
        assert status == expected_status
        assert _close(json.loads(body), json.loads(expected)), query


@pytest.mark.parametrize("match", [
    "", "demo_latency_bucket", '{__name__=~"demo_.*"}', 'demo_latency_bucket{le=~"0.*"}',
    'demo_gauge{route="/a"}', '{route=~"/[ab]", le!="+Inf"}', "nosuch",
    '{__name__=~"demo_rpc.*", quantile!="0.5"}'])
def test_metadata_endpoints_answer_as_prometheus(both: tuple[str, str], match: str) -> None:
    """Series, label names and values, histograms' buckets among them, over the same data."""
    prometheus, ours = both
    form = {"match[]": match} if match else {}
    paths = ["labels", "label/__name__/values", "label/le/values", "label/route/values",
             "label/quantile/values"]
    if match:
        paths.append("series")
    for path in paths:
        for method in ("GET", "POST") if path in ("series", "labels") else ("GET",):
            expected = request(f"{prometheus}/api/v1/{path}", form, method)
            assert request(f"{ours}/api/v1/{path}", form, method) == expected, (path, match)


def test_range_selectors_at_the_top_of_an_instant_query(both: tuple[str, str]) -> None:
    prometheus, ours = both
    for query in ("demo_gauge[2m]", "demo_requests_total[5m] offset 1m",
                  "rate(demo_requests_total[1m])[5m:1m]", "vector(time())[3m:1m] offset 30s",
                  "demo_gauge[10m:3m]", f"demo_gauge[4m:1m] @ {T0_S + 600}",
                  "vector(time())[3m:1m] @ 300"):
        form = {"query": query, "time": str(T)}
        assert request(f"{ours}/api/v1/query", form) == request(
            f"{prometheus}/api/v1/query", form), query


def test_stale_markers_and_what_is_not_served_yet(start_server: StartServer) -> None:
    """A point flagged no-recorded-value is a stale marker (it hides older samples, as a
    Prometheus staleness NaN does); delta sums and histograms and exponential histograms
    answer an execution error naming them, never an empty result."""
    server = start_server()
    base = f"{server.api_url}/prometheus/api/v1"
    server.export(otlp_request(
        gauge_metric("g", [_point("/a", 0, 1.0), _point("/a", 60_000, 2.0),
                           _flagged(_point("/a", 120_000, 0.0)), _point("/a", 240_000, 4.0)]),
        sum_metric("d_total", [_point("/a", 0, 1.0, -1000)], temporality=1),
        histogram_metric("h", [histogram_point({}, 0, [1.0], [1, 0])], temporality=1),
        exp_metric("e", [exp_point({}, 0, 0, 0, [1])]), service="s"))
    values = [json.loads(request(f"{base}/query", {"query": "g", "time": str(T0_S + s)})[1])
              ["data"]["result"] for s in (60, 119, 120, 200, 240, 540, 541)]
    metric = {"__name__": "g", "job": "s", "route": "/a"}
    assert values == [
        [{"metric": metric, "value": [T0_S + 60, "2"]}],
        [{"metric": metric, "value": [T0_S + 119, "2"]}],
        [], [],  # hidden by the marker, though 2 is within 5 minutes
        [{"metric": metric, "value": [T0_S + 240, "4"]}],
        [{"metric": metric, "value": [T0_S + 540, "4"]}],
        [],  # more than 5 minutes after the last sample
    ]
    status, body = request(f"{base}/query",
                           {"query": "histogram_count(g)", "time": "1"})
    assert status == 422
    for query, named in [("rate(d_total[5m])", "delta temporality (d_total)"),
                         ("h_bucket", "delta temporality (h_bucket)"),
                         ('{__name__=~"[eh].*"}', "e (exponential histogram)")]:
        status, body = request(f"{base}/query", {"query": query, "time": str(T0_S)})
        assert status == 422 and json.loads(body)["error"].startswith(
            f"not supported yet: {named};"), body


def _flagged(point: metrics_pb2.NumberDataPoint) -> metrics_pb2.NumberDataPoint:
    point.flags = 1  # FLAG_NO_RECORDED_VALUE
    return point
