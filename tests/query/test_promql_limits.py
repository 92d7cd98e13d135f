"""A PromQL query is bounded: the points it may load (Prometheus' max samples, with its
words) and the time it may take (its ``timeout``, capped by the API's time limit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_hms.query.promql import api
from otel_hms.query.promql.store import PromStore

from metric_builders import T0_S, gauge_metric, number_point, request
from stores import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "store.duckdb")
    store.send(request(gauge_metric("g", [number_point({"i": str(i % 3)}, t, float(t))
                                         for i, t in enumerate(range(0, 3000, 10))])))
    yield store
    store.close()


def test_a_query_loading_too_many_points_is_refused(store: Store) -> None:
    form = {"query": "count_over_time(g[1h])", "time": str(T0_S + 3000)}
    answer = api.instant_query(form, 0, PromStore(store.con, 30, max_samples=299))
    assert (answer.status, answer.body) == (422, (
        b'{"status":"error","errorType":"execution","error":"query processing would load '
        b'too many samples into memory in query execution"}'))
    answer = api.instant_query(form, 0, PromStore(store.con, 30, max_samples=300))
    assert answer.status == 200
    assert [r["value"][1] for r in json.loads(answer.body)["data"]["result"]] == [
        "100", "100", "100"]


def test_a_query_past_its_timeout_answers_timeout(store: Store) -> None:
    form = {"query": "max_over_time(g[10m:1s])", "start": str(T0_S), "end": str(T0_S + 3000),
            "step": "1", "timeout": "1ms"}
    answer = api.range_query(form, PromStore(store.con, 30))
    assert (answer.status, answer.body) == (503, (
        b'{"status":"error","errorType":"timeout","error":"query timed out in expression '
        b'evaluation"}'))
    # the API's time limit caps a longer timeout
    answer = api.range_query({**form, "timeout": "1h"}, PromStore(store.con, 0.001))
    assert answer.status == 503
