"""The API's counter path (query/counters.py) answers exactly as the helpers do.

Points go in through the real decoder and writer; each question is asked through
``QueryService.run`` (series ids, cached labels) and through the ``rate`` / ``increase``
helpers with their MAP labels (``to_sql`` + ``shape``, the path every other aggregation
takes): the two bodies must be equal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from otel_hms.query.read_only import fetch_all
from otel_hms.query.service import QueryService, UnknownMetric, shape
from otel_hms.query.spec import QueryParamError, choose_source, to_sql
from otel_hms.storage.rollups import Retention

from metric_builders import DELTA, at, gauge_metric, number_point, request, sum_metric
from stores import Store, maintain

END_S = 3 * 86400


def helper_body(service: QueryService, params: str) -> list[dict[str, Any]]:
    """The answer's series as the helpers label them."""
    spec, kind = service.spec(QueryParams(params))
    source, spec = choose_source(spec, service.watermarks(), None)
    sql, args = to_sql(spec, kind, source)
    _, rows = fetch_all(service.con, sql, args, 30)
    return shape(rows, None if spec.by else service.series_labels(spec.metric))


def api_body(service: QueryService, params: str) -> dict[str, Any]:
    """The answer as the API gives it, also by the road with the metric lookup first."""
    body = service.answer(QueryParams(params))
    again = service.run(*service.spec(QueryParams(params)))
    # the server's clock reading (now_ms) differs between the two calls; the rest may not
    assert body.pop("now_ms") <= again.pop("now_ms")
    assert body == again
    return body


def send(store: Store, instance: str, points: list[Any], host: str = "h1",
         temporality: int = 2) -> None:
    store.send(request(sum_metric("req", points, temporality=temporality), service="shop",
                       resource={"service.instance.id": instance, "host.name": host}))


def watermarks(store: Store) -> dict[str, dt.datetime | None]:
    rows = store.rows("SELECT key, value FROM otel_hms_meta WHERE key LIKE 'rollup_%_until'")
    return {r["key"].split("_")[1]: dt.datetime.fromisoformat(r["value"]) for r in rows}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "counters.duckdb")
    yield s
    s.close()


def test_counter_answers_equal_the_helpers(store: Store) -> None:
    for instance in ("i1", "i2"):
        send(store, instance, [
            number_point({"route": r, "code": c}, t, t // 60 * (2 if c == "500" else 1)
                         + (7 if instance == "i2" else 0), start=-60)
            for r in ("/a", "/b") for c in ("200", "500") for t in range(0, END_S, 300)])
    send(store, "i1", [number_point({"route": "/d"}, t, 3, start=t - 300)
                       for t in range(0, END_S, 300)], temporality=DELTA)
    # roll-ups up to 1.5 h before the end: the rest of a long range comes from raw points
    maintain(store, END_S - 5400, Retention(raw=None, minute=None, hour=None))
    service = QueryService(store.con, 30, watermarks=lambda: watermarks(store))
    end = at(END_S) // 1_000_000_000
    questions = [f"metric=req&range={r}&step={s}&agg={agg}&end={end}{extra}"
                 for r, s in (("1h", "1h"), ("3h", "5m"), ("8h", "5m"), ("7h", "1h"),
                              ("3d", "1h"), ("2d", "6h"))
                 for agg in ("rate", "increase")
                 for extra in ("", "&by=route", "&by=code,route", "&where=code=500",
                               "&by=route&where=code=200")]
    sources = set()
    for q in questions:
        body = api_body(service, q)
        sources.add(body["source"])
        assert body["series"] == helper_body(service, q), q
        assert body["series"]
    assert sources == {"raw", "1m", "1h"}
    # a late point (a chain break) in the last hour: those answers come from the helpers
    send(store, "i2", [number_point({"route": "/a", "code": "200"}, END_S - 1000,
                                    (END_S - 1000) // 60 + 7, start=-60)])
    assert store.rows("SELECT count(*) AS n FROM sum_chain_breaks") == [{"n": 1}]
    for q in questions:
        assert api_body(service, q)["series"] == helper_body(service, q), q
    # ungrouped series tell the replicas apart by instance
    body = api_body(service, f"metric=req&range=1h&step=1h&agg=increase&end={end}"
                    "&where=route=/a,code=200")
    assert [(s["labels"], s["points"]) for s in body["series"]] == [
        ({"code": "200", "route": "/a", "service.instance.id": "i1", "service.name": "shop"},
         [[(end - 3600) * 1000, 60.0]]),
        ({"code": "200", "route": "/a", "service.instance.id": "i2", "service.name": "shop"},
         [[(end - 3600) * 1000, 60.0]])]
    body = api_body(service, f"metric=req&range=3d&step=1d&agg=increase&end={end}&by=route")
    assert body["source"] == "1h"
    # per day 1,440 minutes x (1 + 2) codes x 2 instances; the first point has no baseline
    days = [(end - 86400 * (3 - d)) * 1000 for d in range(3)]
    assert [(s["labels"], s["points"]) for s in body["series"]] == [
        ({"route": "/a"}, [[days[0], 8610.0], [days[1], 8640.0], [days[2], 8640.0]]),
        ({"route": "/b"}, [[days[0], 8610.0], [days[1], 8640.0], [days[2], 8640.0]]),
        ({"route": "/d"}, [[day, 288.0 * 3] for day in days])]


def test_series_labels_follow_new_series(store: Store) -> None:
    """The label cache is rebuilt when the metric gains a series: a look-alike (same
    instance id) makes both series show the resource attribute they differ in."""
    service = QueryService(store.con, 30)
    end = at(600) // 1_000_000_000
    q = f"metric=req&range=10m&step=10m&agg=increase&end={end}"
    send(store, "i1", [number_point({"route": "/a"}, t, t, start=-60) for t in (0, 300)])
    assert [s["labels"] for s in api_body(service, q)["series"]] == [
        {"route": "/a", "service.instance.id": "i1", "service.name": "shop"}]
    send(store, "i1", [number_point({"route": "/a"}, t, t, start=-60) for t in (0, 300)],
         host="h2")
    body = api_body(service, q)
    assert [s["labels"] for s in body["series"]] == [
        {"host.name": "h1", "route": "/a", "service.instance.id": "i1", "service.name": "shop"},
        {"host.name": "h2", "route": "/a", "service.instance.id": "i1", "service.name": "shop"}]
    assert body["series"] == helper_body(service, q)


def test_counter_questions_about_other_kinds_fail_as_before(store: Store) -> None:
    store.send(request(gauge_metric("load", [number_point({"host": "a"}, 0, 1.0)])))
    service = QueryService(store.con, 30)
    with pytest.raises(QueryParamError, match="agg=rate needs a sum"):
        service.answer(QueryParams("metric=load&agg=rate"))
    with pytest.raises(UnknownMetric, match="no metric named 'nope'"):
        service.answer(QueryParams("metric=nope&agg=rate&range=bad"))
