"""The query API's answers are bounded too: ``query_max_series`` and ``query_max_points``
refuse an oversized answer with 413 naming the setting (issue 12: 1 M series came back as
91 MB in 24 s); narrowing (``where=``) or grouping (``by=``) gets it answered.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from conftest import ServerProcess, StartServer
from otlp_requests import gauge_request, kv

T0_S = 1_700_000_000
SECOND = 1_000_000_000
SERIES_TOO_MANY = ("the answer has {} series, more than query_max_series (50); narrow it with "
                   "where=, group it with by=, or raise the setting")
POINTS_TOO_MANY = ("the answer has more than query_max_points (350) points; use a longer "
                   "step=, a shorter range, fewer series (where=, by=), or raise the setting")


def get(server: ServerProcess, **params: Any) -> tuple[int, Any]:
    url = f"http://{server.api}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def counter_request(hosts: int, seconds: int) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "svc"))
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = "jobs"
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = 2
    for h in range(hosts):
        for s in range(seconds):
            dp = metric.sum.data_points.add()
            dp.attributes.extend([kv("host", f"h{h:02d}"), kv("zone", f"z{h % 2}")])
            dp.start_time_unix_nano = T0_S * SECOND
            dp.time_unix_nano = (T0_S + 1 + s) * SECOND
            dp.as_int = s
    return request


def test_oversized_query_answers_are_refused_with_the_setting_named(
        start_server: StartServer) -> None:
    server = start_server("--query-max-series", "50", "--query-max-points", "350")
    server.export(gauge_request("load", [({"host": f"h{h:02d}", "zone": f"z{h % 2}"},
                                          (T0_S + 1 + s) * SECOND, float(h))
                                         for h in range(60) for s in range(10)]))
    window = {"start": T0_S, "end": T0_S + 11, "step": "1s"}

    coarse = {**window, "step": "10s"}  # one point per series
    assert get(server, metric="load", agg="max", **coarse) == (
        413, {"error": SERIES_TOO_MANY.format(60)})
    assert get(server, metric="load", agg="max", **window) == (413, {"error": POINTS_TOO_MANY})
    status, body = get(server, metric="load", agg="max", where="zone=z0", **window)
    assert (status, len(body["series"])) == (200, 30)
    assert sum(len(s["points"]) for s in body["series"]) == 300
    status, body = get(server, metric="load", agg="max", by="zone", **window)
    assert (status, [s["labels"] for s in body["series"]]) == (
        200, [{"zone": "z0"}, {"zone": "z1"}])
    assert [p[1] for p in body["series"][0]["points"]] == [58.0] * 10

    # The counter road (rate without a MAP per row) is held to the same limits.
    server.export(counter_request(hosts=60, seconds=10))
    assert get(server, metric="jobs", agg="rate", **coarse) == (
        413, {"error": SERIES_TOO_MANY.format(60)})
    assert get(server, metric="jobs", agg="rate", **window) == (413, {"error": POINTS_TOO_MANY})
    status, body = get(server, metric="jobs", agg="rate", by="zone", **window)
    assert (status, len(body["series"])) == (200, 2)

    # The live stream says so in an error event and ends.
    now = int(time.time())
    server.export(gauge_request("live", [({"host": f"h{h:02d}"}, (now - 5) * SECOND, 1.0)
                                         for h in range(60)]))
    stream = f"http://{server.api}/api/v1/stream?metric=live&range=1m&step=10s&agg=max"
    with urllib.request.urlopen(stream, timeout=60) as reply:
        events = reply.read().decode()
    error = json.dumps({"error": SERIES_TOO_MANY.format(60)}, separators=(",", ":"))
    assert events == f"event: error\ndata: {error}\n\n"
