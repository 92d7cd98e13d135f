"""The query API's roll-up quantile path gives the SQL helper's answers, value for value.

``RollupQuantiles`` answers ``/api/v1/query`` quantiles from the roll-ups without the
``histogram_quantile`` macro; every case here is asked both ways and the answers (as the API
shapes them) must be equal, floats bit for bit: explicit and exponential histograms, both
temporalities, resets, +Inf and empty buckets, minutes without observations, negative
bounds, scale changes, series of one group with different bucket layouts and a series that
changes its layout, grouped, ungrouped and filtered, minute and hour roll-ups, and a raw
tail after the roll-up's watermark.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from test_query_api import get

from otel_hms.query.read_only import fetch_all
from otel_hms.query.service import QueryService, shape
from otel_hms.query.spec import QuerySpec, to_sql
from otel_hms.storage.rollups import roll_up_hours, roll_up_minutes

from conftest import ServerProcess, wait_until
from metric_builders import (
    DELTA,
    T0_S,
    at,
    attributes,
    exp_metric,
    exp_point,
    histogram_metric,
    histogram_point,
    request,
)
from stores import Store

HOURS = 3
STEP = 20  # seconds between points
ROLLED_MINUTES = 150  # minute roll-ups up to T0 + 2.5 h: the rest is a raw tail
HOSTS = ("h1", "h2", "h3")
ROUTES = ("/a", "/b")


def t0(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0_S + seconds, dt.UTC)


def cumulative(counts: list[list[int]]) -> list[list[int]]:
    running = [0] * len(counts[0])
    out = []
    for c in counts:
        running = [a + b for a, b in zip(running, c)]
        out.append(running)
    return out


def explicit_points(rng: random.Random, attrs: dict[str, str], bounds: list[float],
                    start: float = -3600.0) -> list[metrics_pb2.HistogramDataPoint]:
    """Cumulative points with random increments, quiet minutes and a reset at 1 h 40."""
    times = list(range(0, HOURS * 3600, STEP))
    steps = [[0] * (len(bounds) + 1) if (t // 60) % 7 == 3 else
             [rng.choice((0, 0, 1, 2, 5, 40)) for _ in range(len(bounds) + 1)]
             for t in times]
    before = cumulative([s for t, s in zip(times, steps) if t < 6000])
    after = cumulative([s for t, s in zip(times, steps) if t >= 6000])
    return [histogram_point(attrs, t, bounds, c, start=start if t < 6000 else 5990)
            for t, c in zip(times, before + after)]


def negative_exp_point(attrs: dict[str, str], t: float, scale: int, counts: list[int],
                       negative: list[int], zero: int) -> metrics_pb2.ExponentialHistogramDataPoint:
    Buckets = metrics_pb2.ExponentialHistogramDataPoint.Buckets
    return metrics_pb2.ExponentialHistogramDataPoint(
        attributes=attributes(attrs), time_unix_nano=at(t), start_time_unix_nano=at(-3600),
        scale=scale, zero_count=zero, zero_threshold=0.001,
        count=sum(counts) + sum(negative) + zero,
        positive=Buckets(offset=-2, bucket_counts=counts),
        negative=Buckets(offset=0, bucket_counts=negative))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("rollup-quantiles") / "q.duckdb")
    rng = random.Random(7)
    for route in ROUTES:
        for host in HOSTS:
            attrs = {"route": route, "host": host, "env": "prod"}
            s.send(request(histogram_metric("lat", explicit_points(
                rng, attrs, [0.1, 0.5, 1.0, 5.0]))))
            # One group, two bucket layouts; h3 changes its layout within minute 60, to
            # one with a bucket (0.5, 1] next to the others' (-Inf, 1].
            bounds = [1.0, 2.0, 5.0] if host == "h1" else [1.0, 5.0, 10.0]
            points = explicit_points(rng, attrs, bounds)
            if host == "h3":
                points = [p for p in points if p.time_unix_nano < at(3620)] + [
                    p for p in explicit_points(rng, attrs, [0.5, 1.0, 2.0])
                    if p.time_unix_nano >= at(3620)]
            s.send(request(histogram_metric("lat.mixed", points)))
            s.send(request(histogram_metric("lat.neg", explicit_points(
                rng, attrs, [-1.0, 0.0, 1.0]))))
            s.send(request(histogram_metric("lat.delta", [
                histogram_point(attrs, t, [1.0, 3.0], [rng.randint(0, 3) for _ in range(3)],
                                start=t - STEP)
                for t in range(0, HOURS * 3600, STEP)], temporality=DELTA)))
            # Only +Inf observations for /b on h1: its quantiles answer the last bound.
            if (route, host) == ("/b", "h1"):
                s.send(request(histogram_metric("lat.inf", [
                    histogram_point(attrs, t, [1.0, 2.0], [0, 0, t // STEP])
                    for t in range(0, HOURS * 3600, STEP)])))
            # Scale 2 for the first hour, then 0 (downscaled), offsets moving.
            s.send(request(exp_metric("lat.exp", [
                exp_point(attrs, t, scale=2 if t < 3600 else 0, offset=(t // 600) % 3,
                          counts=[k := t // STEP + 1, 2 * k, k // 2],
                          zero_count=k // 3, start=-3600)
                for t in range(0, HOURS * 3600, STEP)])))
            # Negative buckets on h1 only: other hosts' cells lack buckets of the axis.
            s.send(request(exp_metric("lat.exp2", [
                negative_exp_point(attrs, t, 1, [k := t // STEP + 1, k],
                                   [k // 2, 1] if host == "h1" else [], k % 4)
                for t in range(0, HOURS * 3600, STEP)])))
    cur = s.con.cursor()
    # In two passes: lat.exp's first hour is rolled up at scale 2, the rest at scale 0.
    roll_up_minutes(cur, t0(0), t0(3600))
    roll_up_minutes(cur, t0(3600), t0(ROLLED_MINUTES * 60))
    roll_up_hours(cur, t0(0), t0(2 * 3600))
    cur.close()
    yield s
    s.close()


KINDS = {"lat.exp": "exponential_histogram", "lat.exp2": "exponential_histogram"}


def both(store: Store, spec: QuerySpec, source: str) -> tuple[Any, Any]:
    """(fast path, SQL helper) answers to ``spec``, shaped as ``/api/v1/query`` shapes them."""
    service = QueryService(store.con, 60)
    extra = None if spec.by else service.series_labels(spec.metric)
    fast = service.quantiles.answer(spec, source, extra)
    sql, args = to_sql(spec, KINDS.get(spec.metric, "histogram"), source)
    _, rows = fetch_all(store.con, sql, args, 60)
    return fast, shape(rows, extra)


def spec(metric: str, q: str, start: float, end: float, step: float,
         by: tuple[str, ...] = ("route",), where: dict[str, str] | None = None) -> QuerySpec:
    return QuerySpec(metric=metric, agg=q, start=t0(start), end=t0(end),
                     step=dt.timedelta(seconds=step), by=by, where=where or {})


METRICS = ("lat", "lat.mixed", "lat.neg", "lat.delta", "lat.inf", "lat.exp", "lat.exp2")
QUANTILES = ("p0", "p25", "p50", "p90", "p99", "p99.9")


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("q", QUANTILES)
def test_minute_rollups_answer_as_the_helper(store: Store, metric: str, q: str) -> None:
    # 20 minutes to 2.5 h (the watermark), per minute and per 7 minutes, by route
    for step in (60, 420):
        fast, helper = both(store, spec(metric, q, 1200, ROLLED_MINUTES * 60, step), "1m")
        assert fast == helper
        assert sum(len(e["points"]) for e in fast) > 0


@pytest.mark.parametrize("metric", METRICS)
def test_raw_tail_after_the_watermark_is_merged(store: Store, metric: str) -> None:
    # Up to 3 h: the last 30 minutes come from raw points; the 7-minute buckets straddle it.
    for step in (60, 420):
        fast, helper = both(store, spec(metric, "p90", 600, HOURS * 3600, step), "1m")
        assert fast == helper
        last = 600 + (HOURS * 3600 - 600 - 1) // step * step
        assert fast[0]["points"][-1][0] == (T0_S + last) * 1000


@pytest.mark.parametrize("metric", METRICS)
def test_groupings_and_filters(store: Store, metric: str) -> None:
    for by, where, q in (((), None, "p50"), (("env",), None, "p50"),
                         (("route", "host"), None, "p0"), (("host",), {"route": "/b"}, "p50"),
                         ((), {"host": "h3"}, "p75")):
        fast, helper = both(store, spec(metric, q, 0, 9000, 300, by, where), "1m")
        assert fast == helper
        assert fast or (metric, where) == ("lat.inf", {"host": "h3"})  # lat.inf: h1 only


@pytest.mark.parametrize("metric", METRICS)
def test_hour_rollups(store: Store, metric: str) -> None:
    fast, helper = both(store, spec(metric, "p95", 0, 3 * 3600, 3600), "1h")
    assert fast == helper
    # 2 h rolled up, the 3rd hour raw
    assert [len(e["points"]) for e in fast] == [3] * (1 if metric == "lat.inf" else 2)


def test_hand_computed_answer(store: Store) -> None:
    # lat.inf, /b: each minute adds 3 observations, all above the last bound: p50 is 2.0.
    fast, helper = both(store, spec("lat.inf", "p50", 0, 600, 60), "1m")
    assert fast == helper == [{"labels": {"route": "/b"},
                               "points": [[(T0_S + m * 60) * 1000, 2.0] for m in range(10)]}]


def test_quiet_minutes_and_unknown_metrics_have_no_points(store: Store) -> None:
    fast, helper = both(store, spec("lat", "p50", 180, 240, 60), "1m")  # minute 3: quiet
    assert fast == helper == []
    assert both(store, spec("nothing", "p50", 0, 600, 60), "1m") == ([], [])


def test_raw_source_is_left_to_the_helper(store: Store) -> None:
    service = QueryService(store.con, 60)
    assert service.quantiles.answer(spec("lat", "p50", 0, 600, 60), "raw") is None


def test_api_answers_from_minute_rollups(tmp_path: Path) -> None:
    """A real server: ``/api/v1/query`` p50/p99 over 6 h come from the minute roll-ups."""
    s = ServerProcess(tmp_path / "q.duckdb", [
        "--rollup-interval-seconds", "0.2", "--rollup-delay", "0",
        "--retention-raw", "forever", "--retention-1m", "forever"], {}, tmp_path / "serve.log")
    try:
        s.wait_ready()
        # Once a minute for 7 h: /a adds 1, 2, 1, 0 observations to (-Inf,1], (1,2], (2,4],
        # (4,+Inf); /b adds 3 to (4,+Inf) only.
        bounds = [1.0, 2.0, 4.0]
        s.export(request(histogram_metric("lat", [
            histogram_point({"route": route}, m * 60, bounds,
                            [m, 2 * m, m, 0] if route == "/a" else [0, 0, 0, 3 * m])
            for route in ("/a", "/b") for m in range(7 * 60 + 1)])))
        end = T0_S + 7 * 3600
        wait_until(lambda: (get(s, "/api/v1/status")[1]["rollups"]["watermarks"]["1m"]
                            or "") >= t0(7 * 3600).isoformat(),
                   timeout=60, message="minute roll-ups up to 7 h")
        minutes = [(end - 6 * 3600 + 60 * i) * 1000 for i in range(360)]
        for q, a in (("p50", 1.0 + (2.0 - 1.0) * ((0.5 * 4.0 - 1.0) / 2.0)),
                     ("p99", 2.0 + (4.0 - 2.0) * ((0.99 * 4.0 - 3.0) / 1.0))):
            status, body = get(s, "/api/v1/query", metric="lat", range="6h", step="1m",
                               agg=q, by="route", end=end)
            assert (status, body["source"]) == (200, "1m"), body
            assert body["series"] == [
                {"labels": {"route": "/a"}, "points": [[t, a] for t in minutes]},
                {"labels": {"route": "/b"}, "points": [[t, 4.0] for t in minutes]}]
    finally:
        s.kill()


def test_a_row_without_layout_is_left_to_the_helper(store: Store) -> None:
    question = spec("lat", "p50", 0, 600, 60)
    store.con.execute("UPDATE rollup_1m_histograms SET layout = NULL "
                      "WHERE time = ? AND layout IS NOT NULL", [t0(120)])
    try:
        assert QueryService(store.con, 60).quantiles.answer(question, "1m") is None
    finally:
        store.con.execute("UPDATE rollup_1m_histograms SET layout = hash(lower, upper) "
                          "WHERE layout IS NULL")
    assert both(store, question, "1m")[0] is not None
