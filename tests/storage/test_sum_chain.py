"""Sum points' stored increases (storage/sum_chain.py) give what the window computes.

Each case sends points through the real decoder and writer, then asks ``otel_sum_increments``
over many ranges twice: as stored (the fast path, with the window only for series whose
break touches the range) and with every series forced onto the window (a break covering
all time, inserted in a transaction that is rolled back).  The two must be equal, row by
row, and the stored columns of unbroken series must be what the migration computes.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_hms.storage import schema
from otel_hms.storage.rollups import Retention
from otel_hms.storage.writer import Writer

from metric_builders import DELTA, at, number_point, request, sum_metric, until_sql
from stores import Store, maintain

INCREMENTS = ("SELECT series_id, time, delta FROM otel_sum_increments('m', INTERVAL {period} "
              "SECOND, until := {until}, lookback := {lookback}) ORDER BY ALL")
# Ranges ending every 15 s over the data, periods from one point to all of it, with and
# without a lookback shorter than the gaps.
RANGES = [(until, period, lookback) for until in range(5, 200, 15)
          for period in (10, 30, 60, 3600) for lookback in ("NULL", "INTERVAL 15 SECOND")]
STORED = "SELECT series_id, time_unix_nano, increase, prev_time_unix_nano FROM points_sum"


def route(name: str) -> dict[str, str]:
    return {"route": name}


def send(store: Store, *points: Any, temporality: int = 2) -> None:
    store.send(request(sum_metric("m", list(points), temporality=temporality)))


def window_rows(store: Store, sql: str) -> list[dict[str, Any]]:
    """``sql``'s rows with every series' increases computed by the window."""
    cur = store.con.cursor()
    cur.execute("BEGIN TRANSACTION")
    try:
        cur.execute("INSERT INTO sum_chain_breaks SELECT series_id, '-infinity', 'infinity' "
                    "FROM series")
        cur.execute(sql)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        cur.execute("ROLLBACK")


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def norm(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [tuple("nan" if isinstance(v, float) and math.isnan(v) else v
                      for v in r.values()) for r in rows]
    return norm(a) == norm(b)


def assert_fast_equals_window(store: Store) -> int:
    """Every range's increments agree; returns how many rows were compared."""
    compared = 0
    for until, period, lookback in RANGES:
        sql = INCREMENTS.format(period=period, until=until_sql(until), lookback=lookback)
        fast = store.rows(sql)
        assert same(fast, window_rows(store, sql)), (until, period, lookback)
        compared += len(fast)
    return compared


def assert_stored_chain(store: Store) -> None:
    """Unbroken series store what the migration's window pass computes."""
    expected = store.rows(f"""
        SELECT c.series_id, c.t AS time_unix_nano,
               CASE WHEN c.pt IS NULL THEN c.v
                    WHEN c.pt = c.t THEN CASE WHEN c.st = c.pst THEN c.v - c.pv END
                    WHEN c.st <> c.pst OR c.v < c.pv THEN c.v ELSE c.v - c.pv END AS increase,
               c.pt AS prev_time_unix_nano
        FROM ({schema._SUM_CHAIN}) c ANTI JOIN sum_chain_breaks b USING (series_id)
        ORDER BY ALL""")
    stored = store.rows(f"{STORED} ANTI JOIN sum_chain_breaks USING (series_id) "
                        "WHERE flags & 1 = 0 AND NOT isnan(coalesce(value_int::DOUBLE, value)) "
                        "ORDER BY ALL")
    assert stored == expected


def broken_routes(store: Store) -> dict[str, tuple[int, int]]:
    rows = store.rows("SELECT s.attributes['route'] AS r, epoch(b.lo)::INT AS lo, "
                      "epoch(b.hi)::INT AS hi FROM sum_chain_breaks b JOIN series s "
                      "USING (series_id)")
    t0 = at(0) // 1_000_000_000
    return {r["r"]: (r["lo"] - t0, r["hi"] - t0) for r in rows}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "chain.duckdb")
    yield s
    s.close()


def send_cases(s: Store) -> None:
    """Every case the chain has to get right, in several requests."""
    send(s, number_point(route("reset"), 10, 10, start=0), number_point(route("reset"), 20, 15,
         start=0), number_point(route("reset"), 30, 3, start=0),
         number_point(route("restart"), 10, 5, start=0),
         number_point(route("restart"), 20, 9, start=15),  # new start time, higher value
         number_point(route("nan"), 10, 1.0, start=0), number_point(route("nan"), 20, math.nan,
         start=0), number_point(route("flagged"), 10, 2, start=0),
         number_point(route("flagged"), 20, 99, start=0, flags=1),
         number_point(route("gap"), 10, 4, start=0), number_point(route("gap"), 20, 6, start=0),
         number_point(route("dups"), 10, 7, start=0), number_point(route("dups"), 10, 7, start=0),
         number_point(route("copies"), 10, 1, start=0), number_point(route("copies"), 20, 3,
         start=0), number_point(route("late"), 10, 1, start=0),
         number_point(route("late"), 40, 9, start=0),
         number_point(route("fresh"), 50, 6, start=45))
    send(s, number_point(route("reset"), 40, 8, start=0),
         number_point(route("nan"), 30, 3.0, start=0),
         number_point(route("flagged"), 30, 5, start=0),
         number_point(route("gap"), 150, 20, start=0),  # far beyond the lookback
         number_point(route("dups"), 10, 7, start=0),  # a retried export: identical copies
         number_point(route("dups"), 20, 12, start=0),
         number_point(route("copies"), 20, 4, start=0),  # the tail's time, another value
         number_point(route("late"), 20, 5, start=0),  # older than the series' last point
         number_point(route("late"), 30, 7, start=0))
    send(s, number_point(route("dups"), 20, 12, start=0),
         number_point(route("copies"), 30, 6, start=0),
         number_point(route("late"), 50, 12, start=0), number_point(route("late"), 60, 2,
         start=0), number_point(route("reset"), 50, 9, start=0))
    send(s, number_point(route("delta"), 10, 3, start=5), number_point(route("delta"), 20, 4,
         start=15), temporality=DELTA)
    send(s, number_point(route("delta"), 20, 4, start=15),  # identical copy: counted once
         number_point(route("delta"), 30, 2, start=25),
         number_point(route("delta late"), 30, 2, start=25), temporality=DELTA)
    send(s, number_point(route("delta late"), 10, 5, start=5), temporality=DELTA)


def test_stored_increases_equal_the_window(store: Store) -> None:
    send_cases(store)
    assert broken_routes(store) == {"copies": (20, 20), "late": (20, 40),
                                    "delta late": (10, 30)}
    assert_stored_chain(store)
    assert assert_fast_equals_window(store) > 1000
    # the stored values themselves, hand-computed
    rows = store.rows("SELECT s.attributes['route'] AS r, (p.time_unix_nano - "
                      f"{at(0)}) // 1000000000 AS t, p.increase AS i, (p.prev_time_unix_nano - "
                      f"{at(0)}) // 1000000000 AS pt FROM points_sum p JOIN series s "
                      "USING (series_id) WHERE s.attributes['route'] IN ('reset', 'dups', 'gap') "
                      "ORDER BY ALL")
    assert [(r["r"], r["t"], r["i"], r["pt"]) for r in rows] == [
        ("dups", 10, 0.0, 10), ("dups", 10, 0.0, 10), ("dups", 10, 7.0, None),
        ("dups", 20, 0.0, 20), ("dups", 20, 5.0, 10),
        ("gap", 10, 4.0, None), ("gap", 20, 2.0, 10), ("gap", 150, 14.0, 20),
        ("reset", 10, 10.0, None), ("reset", 20, 5.0, 10), ("reset", 30, 3.0, 20),
        ("reset", 40, 5.0, 30), ("reset", 50, 1.0, 40)]


def test_flagged_and_nan_points_store_no_increase(store: Store) -> None:
    send_cases(store)
    rows = store.rows("SELECT s.attributes['route'] AS r, p.increase AS i, "
                      "p.prev_time_unix_nano AS pt FROM points_sum p JOIN series s "
                      "USING (series_id) WHERE p.flags & 1 = 1 OR isnan(p.value)")
    assert sorted((r["r"], r["i"], r["pt"]) for r in rows) == [
        ("flagged", None, None), ("nan", None, None)]
    # and the chain went on past them: 2 -> 5, 1 -> 3
    rows = store.rows("SELECT s.attributes['route'] AS r, p.increase AS i FROM points_sum p "
                      "JOIN series s USING (series_id) WHERE p.time_unix_nano = "
                      f"{at(30)} AND s.attributes['route'] IN ('flagged', 'nan') ORDER BY r")
    assert [(r["r"], r["i"]) for r in rows] == [("flagged", 3.0), ("nan", 2.0)]


def test_chain_tails_are_rebuilt_when_the_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "restart.duckdb"
    s = Store(path)
    send_cases(s)
    s.close()
    s = Store(path)  # as `serve` restarting: the tails come back from points_sum
    try:
        send(s, number_point(route("reset"), 60, 11, start=0),
             number_point(route("gap"), 160, 25, start=0),
             number_point(route("dups"), 20, 12, start=0),  # identical to the tail
             number_point(route("flagged"), 40, 8, start=0),
             number_point(route("fresh"), 60, 10, start=45))
        send(s, number_point(route("delta"), 40, 1, start=35), temporality=DELTA)
        assert broken_routes(s) == {"copies": (20, 20), "late": (20, 40),
                                    "delta late": (10, 30)}
        assert_stored_chain(s)
        assert_fast_equals_window(s)
        rows = s.rows("SELECT s.attributes['route'] AS r, p.increase AS i FROM points_sum p "
                      "JOIN series s USING (series_id) WHERE p.time_unix_nano IN "
                      f"({at(60)}, {at(160)}) AND s.attributes['route'] IN "
                      "('reset', 'fresh', 'gap') ORDER BY r")
        assert [(r["r"], r["i"]) for r in rows] == [("fresh", 4.0), ("gap", 5.0),
                                                    ("reset", 2.0)]
    finally:
        s.close()


class _FailingWriter(Writer):
    """A writer whose next ``failures`` points_sum inserts fail after the rows went in."""

    failures = 0

    def _append(self, table_name: str, table: Any) -> None:
        super()._append(table_name, table)
        if table_name == "points_sum" and self.failures:
            self.failures -= 1
            raise RuntimeError("disk full")


def test_a_failed_transaction_leaves_the_chain_as_it_was(store: Store) -> None:
    store.writer.close()
    writer = store.writer = _FailingWriter(store.con, store.writer.known, 1_000_000)
    send(store, number_point(route("a"), 10, 10, start=0))
    writer.failures = 1  # the group fails, its batch alone is retried and commits
    send(store, number_point(route("a"), 20, 50, start=0))
    writer.failures = 2  # the retry fails too: the export fails
    with pytest.raises(RuntimeError, match="disk full"):
        send(store, number_point(route("a"), 30, 90, start=0))
    send(store, number_point(route("a"), 40, 60, start=0))
    rows = store.rows(f"{STORED} ORDER BY time_unix_nano")
    assert [(r["increase"], r["prev_time_unix_nano"]) for r in rows] == [
        (10.0, None), (40.0, at(10)), (10.0, at(20))]
    assert broken_routes(store) == {}
    assert_fast_equals_window(store)


def test_points_before_a_retention_cut_are_no_baseline(store: Store) -> None:
    send(store, *[number_point(route("a"), t, t, start=0) for t in range(0, 7200, 60)])
    send(store, number_point(route("b"), 3590, 1, start=0))
    send(store, number_point(route("b"), 3610, 5, start=0))
    send(store, number_point(route("b"), 3600, 3, start=0))  # late: a break past the cut
    maintain(store, 7200, Retention(raw=dt.timedelta(seconds=3600), minute=None, hour=None))
    assert store.rows("SELECT count(*) AS n FROM points_sum WHERE time < "
                      f"{until_sql(3600)}") == [{"n": 0}]
    assert broken_routes(store) == {"b": (3600, 3610)}
    for until in (3630, 3660, 3700, 7200):
        for period in (30, 60, 600):
            sql = INCREMENTS.format(period=period, until=until_sql(until), lookback="NULL")
            assert same(store.rows(sql), window_rows(store, sql)), (until, period)


def test_a_version_2_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v2.duckdb"
    s = Store(path)
    send_cases(s)
    answers = [s.rows(INCREMENTS.format(period=p, until=until_sql(u), lookback="NULL"))
               for u, p, _ in RANGES[::7]]
    s.con.execute("ALTER TABLE points_sum DROP COLUMN increase")
    s.con.execute("ALTER TABLE points_sum DROP COLUMN prev_time_unix_nano")
    s.con.execute("DROP TABLE sum_chain_breaks")
    s.con.execute("UPDATE otel_hms_meta SET value = '2' WHERE key = 'schema_version'")
    s.close()

    s = Store(path)  # opening migrates
    try:
        assert s.rows("SELECT value FROM otel_hms_meta WHERE key = 'schema_version'") == [
            {"value": schema.SCHEMA_VERSION}]
        # Late points were chained in arrival order; the migration chains in time order and
        # needs no break for them: only the disagreeing copies remain a break.
        assert broken_routes(s) == {"copies": (20, 20)}
        assert_stored_chain(s)
        assert [s.rows(INCREMENTS.format(period=p, until=until_sql(u), lookback="NULL"))
                for u, p, _ in RANGES[::7]] == answers
        assert_fast_equals_window(s)
        send(s, number_point(route("reset"), 60, 11, start=0))  # the chain goes on
        assert s.rows(f"{STORED} WHERE time_unix_nano = {at(60)}")[0]["increase"] == 2.0
    finally:
        s.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_random_arrivals_equal_the_window(store: Store, seed: int) -> None:
    """Points of four series in random batches: late, repeated, reset, NaN, flagged."""
    rnd = random.Random(seed)
    sent: list[Any] = []
    values = {r: 0 for r in "abcd"}
    for step in range(60):
        t = 5 + step * 3
        batch = []
        for r in "abcd":
            roll = rnd.random()
            values[r] = 0 if roll < 0.1 else values[r] + rnd.randint(0, 5)  # resets
            start = 0 if r != "d" or t < 90 else 90  # a new start time half way
            flags = 1 if rnd.random() < 0.05 else 0
            value: float = math.nan if rnd.random() < 0.05 else values[r]
            batch.append(number_point(route(r), t, value, start=start, flags=flags))
            if rnd.random() < 0.1 and sent:
                batch.append(rnd.choice(sent))  # a late or repeated point
        sent.extend(batch)
        rnd.shuffle(batch)
        send(store, *batch)
    assert_stored_chain(store)
    assert assert_fast_equals_window(store) > 1000
