"""The writer ships each new series row once while it is queued, and never loses one.

While the first points of new series arrive, every request carries the series rows until
they are committed; the writer keeps one queued copy.  If the batch holding that copy fails,
the batches that counted on it fail too (the sender retries them, and the retry carries the
row again), so no stored point is ever without its series.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import duckdb
import pytest

from otel_hms.storage.batch import DecodedBatch, SeriesRow
from otel_hms.storage.store import known_series_ids, open_store
from otel_hms.storage.writer import SeriesLost, Writer

T = 1_767_225_600 * 10**9


def row(sid: int) -> SeriesRow:
    return SeriesRow(sid, "gauge", "g", "", "1", None, None, "svc", [("service.name", "svc")],
                     '{"service.name":{"stringValue":"svc"}}', 0, "", "scope", "1", [], "{}",
                     0, "", [("k", str(sid))], f'{{"k":{{"stringValue":"{sid}"}}}}', None)


def batch(sids: list[int], t: int, flags: int | None = 0) -> DecodedBatch:
    b = DecodedBatch()
    cols = b.kind_columns("gauge")
    for sid in sids:
        cols["series_id"].append(sid)
        cols["start_time_unix_nano"].append(0)
        cols["time_unix_nano"].append(t)
        cols["value"].append(1.5)
        cols["value_int"].append(None)
        cols["flags"].append(flags)  # None breaks NOT NULL: the whole batch fails
        cols["exemplars"].append(None)
        b.series[sid] = row(sid)
    b.accepted = len(sids)
    return b


def test_later_batches_do_not_repeat_queued_rows(tmp_path: Path) -> None:
    con = open_store(str(tmp_path / "s.duckdb"))
    writer = Writer(con, known_series_ids(con))
    futures = [writer.submit(batch([1, 2, 3], T + i)) for i in range(20)]
    assert [f.result(30) for f in futures] == [3] * 20
    writer.close()
    assert con.execute("SELECT count(*), count(DISTINCT series_id) FROM series").fetchone() \
        == (3, 3)
    assert con.execute("SELECT count(*) FROM points_gauge").fetchone() == (60,)


def test_a_failed_carrier_fails_the_batches_that_needed_it(tmp_path: Path) -> None:
    con = open_store(str(tmp_path / "s.duckdb"))
    writer = Writer(con, known_series_ids(con))
    outcomes: list[Future[int]] = []
    for attempt in range(4):
        # a big batch keeps the writer busy, so the next two are queued behind it together
        busy = writer.submit(batch(list(range(1000, 41000)), T + attempt))
        bad = writer.submit(batch([100 + attempt], T, flags=None))
        needing = writer.submit(batch([100 + attempt], T + 1))
        with pytest.raises(duckdb.Error):
            bad.result(30)
        try:
            needing.result(30)
        except SeriesLost:
            outcomes.append(needing)
            retry = writer.submit(batch([100 + attempt], T + 1))
            assert retry.result(30) == 1
        assert busy.result(30) == 40000
    writer.close()
    assert outcomes  # the needing batch was queued behind the failing carrier at least once
    # every series with points has its row, and each point is stored once
    orphans = con.execute("SELECT count(*) FROM points_gauge WHERE series_id NOT IN "
                          "(SELECT series_id FROM series)").fetchone()
    assert orphans == (0,)
    assert con.execute("SELECT count(*), count(DISTINCT series_id) FROM points_gauge "
                       "WHERE series_id < 1000").fetchone() == (4, 4)
