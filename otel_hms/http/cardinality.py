"""``GET /api/v1/status/cardinality``: where the series are, to find what explodes.

Like VictoriaMetrics' cardinality explorer: the metrics with the most series, the label names
with the most distinct values (point attributes and resource attributes apart: a resource
attribute such as ``service.instance.id`` multiplies every metric of its service), the
label=value pairs in the most series, and the totals against ``max_series`` and
``max_series_per_metric`` with what those limits refused since start.  ``metric=NAME``
narrows the lists to one metric, to see which of its labels makes it big.

Everything is read from the ``series`` table on a read-only cursor under the SQL time limit;
resource attribute sets are grouped first (a fleet has few), so the statement stays a few
scans of the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otel_hms.common.auth import UNAUTHORIZED
from otel_hms.http.alerting import bearer_check
from otel_hms.query.read_only import QueryError, fetch_all
from otel_hms.storage.connection import Cursors

TOP_DEFAULT = 10
TOP_MAX = 1000

_TOTALS = "SELECT count(*), count(DISTINCT metric_name) FROM series"
_METRICS = """
    SELECT metric_name, count(*) AS series FROM series {where}
    GROUP BY ALL ORDER BY series DESC, metric_name LIMIT ?
"""
_POINT_LABELS = """
    SELECT e.key, count(DISTINCT e.value) AS n_values, count(*) AS series
    FROM (SELECT unnest(map_entries(attributes)) AS e FROM series {where})
    GROUP BY ALL ORDER BY n_values DESC, series DESC, e.key LIMIT ?
"""
_RESOURCE_LABELS = """
    SELECT e.key, count(DISTINCT e.value) AS n_values, sum(n)::BIGINT AS series
    FROM (SELECT unnest(map_entries(m)) AS e, n
          FROM (SELECT resource_attributes AS m, count(*) AS n FROM series {where}
                GROUP BY ALL))
    GROUP BY ALL ORDER BY n_values DESC, series DESC, e.key LIMIT ?
"""
_LABEL_VALUES = """
    SELECT e.key, e.value, count(*) AS series
    FROM (SELECT unnest(map_entries(attributes)) AS e FROM series {where})
    GROUP BY ALL ORDER BY series DESC, e.key, e.value LIMIT ?
"""


class CardinalityParamError(ValueError):
    """A bad query parameter; the message names it."""


class UnknownMetric(CardinalityParamError):
    """``metric=`` names no stored metric (404)."""


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def cardinality(con: Cursors, timeout: float, usage: dict[str, Any],
                top: int = TOP_DEFAULT, metric: str | None = None) -> dict[str, Any]:
    """The answer of ``/api/v1/status/cardinality``; ``usage`` is ``SeriesLimits.usage``
    with the metrics by refused points."""
    where, args = ("WHERE metric_name = ?", [metric]) if metric else ("", [])
    _, ((series, metrics),) = fetch_all(con, _TOTALS, [], timeout)
    _, top_metrics = fetch_all(con, _METRICS.format(where=where), [*args, top], timeout)
    if metric and not top_metrics:
        raise UnknownMetric(f"metric: no metric named {metric!r} is stored; GET /api/v1/metrics "
                            "lists the names")
    _, point = fetch_all(con, _POINT_LABELS.format(where=where), [*args, top], timeout)
    _, resource = fetch_all(con, _RESOURCE_LABELS.format(where=where), [*args, top], timeout)
    _, pairs = fetch_all(con, _LABEL_VALUES.format(where=where), [*args, top], timeout)
    max_series, per_metric = usage["max_series"], usage["max_series_per_metric"]
    refused = {r["metric"]: r for r in usage.get("refused_by_metric", [])}
    return {
        "series": series, "metrics": metrics,
        "max_series": max_series, "max_series_per_metric": per_metric,
        "usage": _share(series, max_series), "refused_series": usage["refused_series"],
        "metric": metric,
        "top_metrics": [
            {"metric": name, "series": n, "share": _share(n, series),
             "usage": _share(n, per_metric),
             "refused_points": refused.get(name, {}).get("points", 0),
             "refused_series": refused.get(name, {}).get("series", 0)}
            for name, n in top_metrics],
        "top_labels": sorted(
            [{"label": k, "attributes": "point", "values": v, "series": n} for k, v, n in point]
            + [{"label": k, "attributes": "resource", "values": v, "series": n}
               for k, v, n in resource],
            key=lambda r: (-r["values"], -r["series"], r["label"], r["attributes"]))[:top],
        "top_label_values": [{"label": k, "value": v, "series": n} for k, v, n in pairs],
        "refused_metrics": [r for r in usage.get("refused_by_metric", [])
                            if not metric or r["metric"] == metric][:top],
    }


def _top(raw: str | None) -> int:
    if raw is None or raw == "":
        return TOP_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= TOP_MAX:
        raise CardinalityParamError(f"top: must be an integer 1-{TOP_MAX} (got {raw!r})")
    return value


def cardinality_route(con: Cursors, timeout: float,
                      usage: Callable[[int], dict[str, Any]], token: str | None) -> Route:
    """The route for ``api_app``'s ``extra_routes``; ``usage(top)`` is the writer's
    ``SeriesLimits.usage``."""
    authorized = bearer_check(token)

    async def endpoint(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": UNAUTHORIZED}, 401,
                                headers={"WWW-Authenticate": 'Bearer realm="otel-hms"'})
        try:
            top = _top(request.query_params.get("top"))
            metric = (request.query_params.get("metric") or "").strip() or None
            body = await asyncio.to_thread(cardinality, con, timeout, usage(TOP_MAX), top,
                                           metric)
        except UnknownMetric as exc:
            return JSONResponse({"error": str(exc)}, 404)
        except (CardinalityParamError, QueryError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(body)

    return Route("/api/v1/status/cardinality", endpoint)
