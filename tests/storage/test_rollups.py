"""Roll-ups answer what raw points answer; retention drops only what is rolled up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_hms.storage.rollups import Maintenance, Retention

from metric_builders import (
    DELTA,
    at,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    until_sql,
)
from stores import Store, maintain

HOURS = 3
STEP = 20  # seconds between points


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("rollups") / "rollups.duckdb")
    times = range(0, HOURS * 3600, STEP)
    for host in ("a", "b"):
        attrs = {"host": host, "env": "prod"}
        s.send(request(gauge_metric("load", [
            number_point(attrs, t, (t // STEP) % 17 + (0.5 if host == "b" else 0))
            for t in times])))
        # a counter with a reset after 100 minutes
        s.send(request(histogram_metric("wait", [
            histogram_point(attrs, t, [1.0, 2.0],
                            [k := (t // STEP) + 1, 2 * k, (k % 5)] if t < 6000 else
                            [k := (t - 6000) // STEP + 1, k, 0],
                            start=-60 if t < 6000 else 5990)
            for t in times])))
    from metric_builders import sum_metric
    s.send(request(sum_metric("done", [
        number_point({"host": "a"}, t, 3 * (t // STEP) if t < 6000 else (t - 6000) // STEP,
                     start=-60 if t < 6000 else 5990) for t in times])))
    s.send(request(sum_metric("done.delta", [
        number_point({"host": "a"}, t, (t // STEP) % 3, start=t - STEP) for t in times],
        temporality=DELTA)))
    yield s
    s.close()


QUESTIONS = [
    "SELECT Labels, TimeUnix, Count, Sum, Min, Max, Last, round(Avg, 9) AS Avg "
    "FROM window_stats('load', {period}, step := {step}, until := {until}, source := '{src}', "
    "group_by := {by}) ORDER BY ALL",
    "SELECT Labels, TimeUnix, Value FROM increase('done', {period}, step := {step}, "
    "until := {until}, source := '{src}', group_by := {by}) ORDER BY ALL",
    "SELECT Labels, TimeUnix, Value FROM increase('done.delta', {period}, step := {step}, "
    "until := {until}, source := '{src}', group_by := {by}) ORDER BY ALL",
    "SELECT Labels, TimeUnix, round(Value, 9) AS Value FROM histogram_quantile(0.9, 'wait', "
    "{period}, step := {step}, until := {until}, source := '{src}', group_by := {by}) "
    "ORDER BY ALL",
    "SELECT Labels, TimeUnix, round(Value, 9) AS Value, Total FROM sla_adherence('wait', 1.5, "
    "{period}, step := {step}, until := {until}, source := '{src}', group_by := {by}) "
    "ORDER BY ALL",
]


@pytest.mark.parametrize("question", range(len(QUESTIONS)))
@pytest.mark.parametrize("source,step", [("1m", "INTERVAL 10 MINUTE"), ("1h", "INTERVAL 1 HOUR")])
def test_rollups_answer_as_raw_points_do(store: Store, question: int, source: str,
                                         step: str) -> None:
    maintain(store, HOURS * 3600 + 60, Retention(raw=None, minute=None, hour=None))
    # Ends 30 minutes after the last roll-up: the tail comes from raw points.
    for by in ("NULL", "['env']"):
        args = {"period": "INTERVAL 3 HOUR", "step": step, "until": until_sql(3 * 3600),
                "by": by}
        raw = store.rows(QUESTIONS[question].format(src="raw", **args))
        rolled = store.rows(QUESTIONS[question].format(src=source, **args))
        assert raw and rolled == raw


def test_the_tail_after_the_watermark_comes_from_raw(store: Store) -> None:
    m = Maintenance(store.con, Retention(raw=None, minute=None, hour=None),
                    delay=dt.timedelta(0))
    m.run_once(dt.datetime.fromtimestamp(at(HOURS * 3600) / 1e9, dt.UTC))
    q = QUESTIONS[1].format(src="1m", period="INTERVAL 1 HOUR", step="INTERVAL 1 HOUR",
                            until=until_sql(HOURS * 3600 + 3600), by="NULL")
    raw = store.rows(q.replace("'1m'", "'raw'"))
    assert store.rows(q) == raw


def test_retention_keeps_what_is_not_rolled_up(tmp_path: Path) -> None:
    s = Store(tmp_path / "retention.duckdb")
    try:
        s.send(request(gauge_metric("t", [number_point({"k": "v"}, t, 1.0)
                                          for t in range(0, 7200, 60)])))
        m = Maintenance(s.con, Retention(raw=dt.timedelta(minutes=30),
                                         minute=dt.timedelta(minutes=30), hour=None),
                        delay=dt.timedelta(minutes=5))
        m.run_once(dt.datetime.fromtimestamp(at(7200) / 1e9, dt.UTC))
        # raw older than 30 minutes is gone in whole hours (the first hour); minute roll-ups
        # older than the hour watermark (1 h) and 30 minutes are gone; the hour roll-ups
        # keep everything.
        assert s.rows("SELECT min(time_unix_nano) AS t, count(*) AS n FROM points_gauge") == [
            {"t": at(3600), "n": 60}]
        assert s.rows("SELECT min(time) = TIMESTAMPTZ '2026-01-01 01:00:00+00' AS ok, "
                      "sum(count) AS n FROM rollup_1m_number") == [{"ok": True, "n": 55}]
        assert s.rows("SELECT sum(count) AS n FROM rollup_1h_number") == [{"n": 60}]
        assert m.status()["rows_deleted"] == 60 + 60
        # a second pass changes nothing
        m.run_once(dt.datetime.fromtimestamp(at(7200) / 1e9, dt.UTC))
        assert s.rows("SELECT count(*) AS n FROM rollup_1h_number") == [{"n": 1}]
    finally:
        s.close()
