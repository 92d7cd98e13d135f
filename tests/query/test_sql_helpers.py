"""The SQL helpers against hand-computed answers.

Points go in through the receiver's decoder and the store's writer (the code ``serve`` runs),
in process, so each case is fast; tests/query/test_query_api.py asks the same questions of a
running server over HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from metric_builders import (
    DELTA,
    at,
    exp_metric,
    exp_point,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    rounded,
    sum_metric,
    until_sql,
)
from stores import Store

A, B, C, D = ({"route": r, "env": "prod"} for r in ("/a", "/b", "/c", "/d"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("helpers") / "helpers.duckdb")
    cumulative = sum_metric("jobs", [
        number_point(A, 0, 10, start=-3600), number_point(A, 10, 15, start=-3600),
        number_point(A, 20, 15, start=-3600),
        # reset: new start time, lower value
        number_point(A, 40, 3, start=35), number_point(A, 50, 8, start=35),
        # started inside the range: its first value counts
        number_point(C, 15, 4, start=12), number_point(C, 25, 9, start=12),
        # NaN is left out
        number_point(D, 0, 1.0, start=-3600), number_point(D, 10, math.nan, start=-3600),
        number_point(D, 20, 3.0, start=-3600),
        # outside the range
        number_point(A, 60, 100, start=35),
    ])
    delta = sum_metric("jobs", [number_point(B, 10, 4, start=0),
                                number_point(B, 20, 6, start=10),
                                number_point(B, 60, 50, start=20)], temporality=DELTA)
    s.send(request(cumulative))
    s.send(request(delta))
    # Out of order and duplicated: the point at 30 s arrives last, the one at 50 s twice.
    s.send(request(sum_metric("jobs", [number_point(A, 30, 22, start=-3600),
                                       number_point(A, 50, 8, start=35)])))

    bounds = [1.0, 2.0, 5.0]
    s.send(request(histogram_metric("latency", [
        histogram_point(A, 0, bounds, [1, 1, 0, 0]),
        histogram_point(A, 10, bounds, [3, 2, 1, 0]),
        histogram_point(A, 20, bounds, [3, 4, 1, 2]),
    ])))
    s.send(request(histogram_metric("latency", [
        histogram_point(B, 10, bounds, [0, 0, 4, 0], start=0)], temporality=DELTA)))

    s.send(request(exp_metric("exp.latency", [
        exp_point(A, 0, scale=1, offset=0, counts=[1]),
        # the SDK downscaled: scale 0, buckets (1,2] and (2,4], plus one zero
        exp_point(A, 10, scale=0, offset=0, counts=[3, 2], zero_count=1),
    ])))

    s.send(request(gauge_metric("temperature", [
        number_point({"host": "a"}, 0, 1), number_point({"host": "a"}, 10, 3),
        number_point({"host": "a"}, 20, 5.0), number_point({"host": "a"}, 40, 7),
        number_point({"host": "b"}, 10, 10),
        number_point({"host": "b"}, 30, 99, flags=1),  # no recorded value
    ])))
    yield s
    s.close()


WINDOW = f"INTERVAL 50 SECOND, until := {until_sql(55)}"


def ts(seconds: float) -> Any:
    """The TIMESTAMPTZ DuckDB returns for ``seconds`` after T0."""
    import datetime as dt
    return dt.datetime.fromtimestamp(at(seconds) / 1e9, tz=dt.UTC)


def by_route(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["Labels"].get("route"): r["Value"] for r in rows}


def test_increase_per_series(store: Store) -> None:
    rows = store.rows(f"SELECT * FROM increase('jobs', {WINDOW})")
    # /a: +5 +0 +7, reset to 3, +5; /b delta: 4 + 6; /c started at 12 s: 4 then +5; /d: 1 → 3.
    assert by_route(rows) == {"/a": 20.0, "/b": 10.0, "/c": 9.0, "/d": 2.0}
    assert {r["TimeUnix"] for r in rows} == {ts(5)}
    assert rows[0]["Labels"]["service.name"] == "svc"
    assert all(r["SeriesId"] is not None for r in rows)


def test_disagreeing_copies_of_a_point_count_once_as_the_largest(tmp_path: Path) -> None:
    """Two copies of one time with different values (a misbehaving sender): the point and the
    next one's baseline both use the larger copy, so nothing is lost or counted twice."""
    s = Store(tmp_path / "copies.duckdb")
    try:
        s.send(request(sum_metric("copies", [number_point(A, 10, 10, start=-3600),
                                             number_point(A, 20, 15, start=-3600),
                                             number_point(A, 30, 20, start=-3600)])))
        s.send(request(sum_metric("copies", [number_point(A, 20, 17, start=-3600)])))
        s.send(request(sum_metric("copies", [number_point(B, 10, 4, start=0),
                                             number_point(B, 20, 1, start=10)],
                                  temporality=DELTA)))
        s.send(request(sum_metric("copies", [number_point(B, 10, 6, start=0)],
                                  temporality=DELTA)))
        rows = s.rows(f"SELECT * FROM increase('copies', {WINDOW})")
    finally:
        s.close()
    # /a: 10 -> 17 (the larger copy at 20 s) -> 20; /b delta: 6 (the larger copy) + 1.
    assert by_route(rows) == {"/a": 10.0, "/b": 7.0}


def test_rate_is_increase_per_second(store: Store) -> None:
    rows = store.rows(f"SELECT * FROM rate('jobs', {WINDOW})")
    assert by_route(rows) == {"/a": 0.4, "/b": 0.2, "/c": 0.18, "/d": 0.04}


def test_increase_by_step_and_group(store: Store) -> None:
    rows = store.rows(f"SELECT TimeUnix, Value FROM increase('jobs', {WINDOW}, "
                      "step := INTERVAL 25 SECOND, match := MAP {'route': '/a'})")
    assert rows == [{"TimeUnix": ts(5), "Value": 5.0}, {"TimeUnix": ts(30), "Value": 15.0}]
    rows = store.rows(f"SELECT Labels, Value, SeriesId FROM increase('jobs', {WINDOW}, "
                      "group_by := ['env'])")
    assert rows == [{"Labels": {"env": "prod"}, "Value": 41.0, "SeriesId": None}]
    rows = store.rows(f"SELECT Labels, Value FROM increase('jobs', {WINDOW}, "
                      "group_by := ['route', 'service.name']) ORDER BY Value")
    assert rows == [{"Labels": {"route": r, "service.name": "svc"}, "Value": v}
                    for r, v in (("/d", 2.0), ("/c", 9.0), ("/b", 10.0), ("/a", 20.0))]


def test_counter_without_baseline_is_not_guessed(store: Store) -> None:
    # From 12 s on, /a's first point (20 s) has its baseline at 10 s; /d's at 20 s has none
    # in a 5 s lookback and its start time is before the range, so it says nothing.
    rows = store.rows(f"SELECT * FROM increase('jobs', INTERVAL 43 SECOND, "
                      f"until := {until_sql(55)}, lookback := INTERVAL 5 SECOND)")
    assert by_route(rows) == {"/a": 15.0, "/b": 6.0, "/c": 9.0}


def test_histogram_quantile(store: Store) -> None:
    # /a's increases: (−,1] 2, (1,2] 3, (2,5] 1, (5,+Inf) 2; /b (delta): (2,5] 4.
    rows = rounded(store.rows(f"SELECT * FROM histogram_quantile(0.5, 'latency', {WINDOW})"))
    assert by_route(rows) == {"/a": round(1 + 2 / 3, 9), "/b": 3.5}
    rows = store.rows(f"SELECT * FROM histogram_quantile(0.99, 'latency', {WINDOW})")
    assert by_route(rows) == {"/a": 5.0, "/b": 4.97}
    rows = store.rows(f"SELECT Labels, Value FROM histogram_quantile(0.75, 'latency', "
                      f"{WINDOW}, group_by := ['env'])")
    assert rounded(rows) == [{"Labels": {"env": "prod"}, "Value": 4.4}]


def test_sla_adherence(store: Store) -> None:
    rows = store.rows(f"SELECT Labels, Value, Total FROM sla_adherence('latency', 2, {WINDOW}, "
                      "match := MAP {'route': '/a'})")
    assert [(r["Value"], r["Total"]) for r in rows] == [(0.625, 8.0)]
    rows = store.rows(f"SELECT Value FROM sla_adherence('latency', 3.5, {WINDOW}, "
                      "group_by := ['env'])")
    # 5 at or under 2, half of (2,5]'s 5 under 3.5, none of +Inf: 7.5 of 12
    assert rows == [{"Value": 7.5 / 12}]
    rows = store.rows(f"SELECT Labels, Value, Total FROM sla_adherence('latency', 3.5, "
                      f"{WINDOW}, group_by := [])")
    assert rows == [{"Labels": {}, "Value": 7.5 / 12, "Total": 12.0}]


def test_exponential_histogram_quantile_across_a_scale_change(store: Store) -> None:
    # At scale 0: increases zero 1, (1,2] 3-1, (2,4] 2.
    rows = store.rows(f"SELECT * FROM histogram_quantile(0.5, 'exp.latency', {WINDOW})")
    assert by_route(rows) == {"/a": 1.75}
    rows = store.rows(f"SELECT * FROM histogram_quantile(0.8, 'exp.latency', {WINDOW})")
    assert by_route(rows) == {"/a": 3.0}


def test_window_stats_with_gap_filling(store: Store) -> None:
    rows = store.rows(f"SELECT TimeUnix, Count, Sum, Avg, Min, Max, Last "
                      f"FROM window_stats('temperature', INTERVAL 60 SECOND, "
                      f"until := {until_sql(60)}, step := INTERVAL 20 SECOND, "
                      "match := MAP {'host': 'a'}, fill := true) ORDER BY TimeUnix")
    assert rows == [
        {"TimeUnix": ts(0), "Count": 2, "Sum": 4.0, "Avg": 2.0, "Min": 1.0, "Max": 3.0,
         "Last": 3.0},
        {"TimeUnix": ts(20), "Count": 1, "Sum": 5.0, "Avg": 5.0, "Min": 5.0, "Max": 5.0,
         "Last": 5.0},
        {"TimeUnix": ts(40), "Count": 1, "Sum": 7.0, "Avg": 7.0, "Min": 7.0, "Max": 7.0,
         "Last": 7.0},
    ]
    rows = store.rows(f"SELECT TimeUnix, Count, Avg FROM window_stats('temperature', "
                      f"INTERVAL 40 SECOND, until := {until_sql(40)}, step := INTERVAL 10 SECOND, "
                      "group_by := ['host'], fill := true) "
                      "WHERE Labels['host'] = 'b' ORDER BY TimeUnix")
    assert rows == [{"TimeUnix": ts(0), "Count": 0, "Avg": None},
                    {"TimeUnix": ts(10), "Count": 1, "Avg": 10.0},
                    {"TimeUnix": ts(20), "Count": 0, "Avg": None},
                    {"TimeUnix": ts(30), "Count": 0, "Avg": None}]


def test_latest_value_per_series(store: Store) -> None:
    rows = store.rows(f"SELECT Labels['host'] AS host, TimeUnix, Value "
                      f"FROM latest('temperature', INTERVAL 1 HOUR, until := {until_sql(60)})")
    assert rows == [{"host": "a", "TimeUnix": ts(40), "Value": 7.0},
                    {"host": "b", "TimeUnix": ts(10), "Value": 10.0}]


def test_time_grid(store: Store) -> None:
    rows = store.rows(f"SELECT * FROM time_grid(INTERVAL 3 MINUTE, step := INTERVAL 1 MINUTE, "
                      f"until := {until_sql(180)})")
    assert rows == [{"TimeUnix": ts(0)}, {"TimeUnix": ts(60)}, {"TimeUnix": ts(120)}]


def test_helpers_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "again.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = {r[0] for r in con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() "
            "WHERE function_type = 'table_macro'").fetchall()}
    finally:
        con.close()
    assert {"rate", "increase", "histogram_quantile", "sla_adherence", "window_stats",
            "latest", "time_grid"} <= names
