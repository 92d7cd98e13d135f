"""Stores written by schema versions 1 and 2 open, migrated, and answer exactly as before."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from otel_hms.query.service import QueryService
from otel_hms.query.spec import QuerySpec
from otel_hms.storage.rollups import Retention
from otel_hms.storage.schema import SCHEMA_VERSION

from metric_builders import T0_S, histogram_metric, histogram_point, request, until_sql
from stores import Store, maintain

QUANTILE = ("SELECT Labels, TimeUnix, Value FROM histogram_quantile(0.9, 'wait', INTERVAL 3 "
            "HOUR, step := INTERVAL {step}, until := {until}, source := '{src}') ORDER BY ALL")
BUCKETS = "SELECT * FROM rollup_{res}_buckets ORDER BY ALL"


def _to_version_1(store: Store) -> None:
    """Store the histogram roll-ups as version 1 did: a row per bucket, in a table."""
    con = store.con
    for res in ("1m", "1h"):
        con.execute(f"CREATE TABLE v1_{res} AS SELECT * FROM rollup_{res}_buckets")
        con.execute(f"DROP VIEW rollup_{res}_buckets")
        con.execute(f"DROP TABLE rollup_{res}_histograms")
        con.execute(f"ALTER TABLE v1_{res} RENAME TO rollup_{res}_buckets")
    con.execute("UPDATE otel_hms_meta SET value = '1' WHERE key = 'schema_version'")


def test_version_1_histogram_rollups_are_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    s = Store(path)
    s.send(request(histogram_metric("wait", [
        histogram_point({"host": h}, t, [1.0, 2.0], [t // 20 + 1, t // 10 + (h == "b"), 1],
                        start=-60)
        for h in ("a", "b") for t in range(0, 3 * 3600, 20)])))
    maintain(s, 3 * 3600 + 60, Retention(raw=None, minute=None, hour=None))
    until = until_sql(3 * 3600)
    questions = [QUANTILE.format(step=step, until=until, src=src)
                 for step, src in (("1 MINUTE", "1m"), ("1 HOUR", "1h"), ("1 HOUR", "raw"))]
    answers = [s.rows(q) for q in questions]
    buckets = {res: s.rows(BUCKETS.format(res=res)) for res in ("1m", "1h")}
    assert len(answers[0]) == 2 * 180 and len(buckets["1m"]) == 2 * 180 * 3
    assert answers[1] == answers[2]
    _to_version_1(s)
    s.close()

    s = Store(path)  # opening migrates
    try:
        assert s.rows("SELECT value FROM otel_hms_meta WHERE key = 'schema_version'") == [
            {"value": SCHEMA_VERSION}]
        assert s.rows("SELECT count(*) AS n FROM rollup_1m_histograms") == [{"n": 2 * 180}]
        assert s.rows("SELECT lower, upper FROM rollup_1h_histograms LIMIT 1") == [
            {"lower": [None, 1.0, 2.0], "upper": [1.0, 2.0, float("inf")]}]
        assert {res: s.rows(BUCKETS.format(res=res)) for res in ("1m", "1h")} == buckets
        assert [s.rows(q) for q in questions] == answers
        # and the roll-ups go on from there
        more = [histogram_point({"host": "a"}, t, [1.0, 2.0], [1000, 1000, 1000], start=-60)
                for t in range(3 * 3600, 4 * 3600, 20)]
        s.send(request(histogram_metric("wait", more)))
        maintain(s, 4 * 3600 + 60, Retention(raw=None, minute=None, hour=None))
        assert s.rows("SELECT count(*) AS n FROM rollup_1h_histograms") == [{"n": 2 * 3 + 1}]
    finally:
        s.close()


def test_version_2_rollups_get_their_layouts(tmp_path: Path) -> None:
    path = tmp_path / "v2.duckdb"
    s = Store(path)
    s.send(request(histogram_metric("wait", [
        histogram_point({"host": h}, t, [1.0, 2.0] if h == "a" else [1.5],
                        [t // 20 + 1, t // 10, 1] if h == "a" else [t // 20, 1], start=-60)
        for h in ("a", "b") for t in range(0, 3 * 3600, 20)])))
    maintain(s, 3 * 3600 + 60, Retention(raw=None, minute=None, hour=None))
    spec = QuerySpec(metric="wait", agg="p90", start=dt.datetime.fromtimestamp(T0_S, dt.UTC),
                     end=dt.datetime.fromtimestamp(T0_S + 3 * 3600, dt.UTC),
                     step=dt.timedelta(minutes=5))
    before = QueryService(s.con, 60).quantiles.answer(spec, "1m", {})
    assert before and len(before[0]["points"]) == 36
    for res in ("1m", "1h"):
        s.con.execute(f"ALTER TABLE rollup_{res}_histograms DROP COLUMN layout")
    s.con.execute("UPDATE otel_hms_meta SET value = '2' WHERE key = 'schema_version'")
    s.close()

    s = Store(path)  # opening migrates
    try:
        assert s.rows("SELECT value FROM otel_hms_meta WHERE key = 'schema_version'") == [
            {"value": SCHEMA_VERSION}]
        for res in ("1m", "1h"):
            assert s.rows(f"SELECT count(*) = count(*) FILTER (layout = hash(lower, upper)) "
                          f"AS ok, count(DISTINCT layout) AS n FROM rollup_{res}_histograms"
                          ) == [{"ok": True, "n": 2}]
        assert QueryService(s.con, 60).quantiles.answer(spec, "1m", {}) == before
    finally:
        s.close()
