"""The alerting endpoints of the ``--api`` server.

``GET /api/v1/alerts`` (every instance and its state), ``GET /api/v1/rules`` (groups, rule
health, last error, evaluation durations, notifier delivery counts), ``POST
/api/v1/rules/reload`` (200 when applied, 400 with the one-line error when a file is bad and
the previous rules stay), ``GET /api/v1/slos`` (SLI and error budget left per SLO) and ``POST
/api/v1/rules/backtest`` (what ``otel-hms rules backtest`` calls).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otel_hms.alerting.backtest import backtest, parse_rules_text
from otel_hms.alerting.errors import BacktestError, RuleFileError
from otel_hms.alerting.service import Alerting
from otel_hms.common.auth import UNAUTHORIZED, bearer_matches
from otel_hms.common.durations import parse_seconds
from otel_hms.query.read_only import jsonable


def bearer_check(token: str | None) -> Callable[[Request], bool]:
    """The API's bearer-token rule (``common.auth``) as a check of a request."""
    def authorized(request: Request) -> bool:
        allowed: bool = bearer_matches(token, request.headers.get("authorization"))
        return allowed
    return authorized


def routes(get_alerting: Callable[[], Alerting | None], token: str | None) -> list[Route]:
    """Routes for ``api_app``'s ``extra_routes``; ``get_alerting`` is read per request (the
    service is set once started); requests need the API's bearer token when one is set."""
    authorized = bearer_check(token)

    def guard(handler: Callable[[Request, Alerting], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not authorized(request):
                return JSONResponse({"error": UNAUTHORIZED}, 401,
                                    headers={"WWW-Authenticate": 'Bearer realm="otel-hms"'})
            alerting = get_alerting()
            if alerting is None:
                return JSONResponse({"error": "alerting is starting"}, 503)
            result: Response = await handler(request, alerting)
            return result
        return endpoint

    async def alerts(request: Request, alerting: Alerting) -> Response:
        state = request.query_params.get("state")
        items = [a for a in alerting.alerts() if state is None or a["state"] == state]
        return JSONResponse({"alerts": jsonable(items)})

    async def rules(request: Request, alerting: Alerting) -> Response:
        return JSONResponse(jsonable(alerting.status()))

    async def reload(request: Request, alerting: Alerting) -> Response:
        ok, message = await asyncio.to_thread(alerting.reload)
        return JSONResponse({"status": "ok", "message": message} if ok
                            else {"status": "error", "error": message}, 200 if ok else 400)

    async def backtest_route(request: Request, alerting: Alerting) -> Response:
        try:
            body = json.loads(await request.body())
            text, since = str(body["rules"]), parse_seconds(body.get("since", "24h"))
            rule = body.get("rule")
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'body must be JSON: {"rules": "<rules file text>", '
                                          '"since": "24h", "rule": "optional name"}'}, 400)
        try:
            rules = parse_rules_text(text, str(body.get("file", "rules")))
            result = await asyncio.to_thread(backtest, rules, alerting.replay_query, since, rule)
        except (RuleFileError, BacktestError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(jsonable(result))

    async def slos(request: Request, alerting: Alerting) -> Response:
        items = await asyncio.to_thread(alerting.slo_statuses)
        return JSONResponse({"slos": jsonable(items)})

    async def post_slo(request: Request, alerting: Alerting) -> Response:
        try:
            definition = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "the body must be one SLO as a JSON object"}, 400)
        try:
            name = await asyncio.to_thread(alerting.put_slo, definition)
        except RuleFileError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"status": "ok", "name": name, "group": f"slo:{name}"}, 201)

    async def delete_slo(request: Request, alerting: Alerting) -> Response:
        name = request.path_params["name"]
        if not await asyncio.to_thread(alerting.delete_slo, name):
            return JSONResponse({"error": f"no SLO {name!r} was posted over HTTP (SLOs from "
                                          "rules files are removed by editing the file)"}, 404)
        return JSONResponse({"status": "ok", "name": name})

    return [
        Route("/api/v1/alerts", guard(alerts)),
        Route("/api/v1/slos", guard(slos)),
        Route("/api/v1/slos", guard(post_slo), methods=["POST"]),
        Route("/api/v1/slos/{name}", guard(delete_slo), methods=["DELETE"]),
        Route("/api/v1/rules/backtest", guard(backtest_route), methods=["POST"]),
        Route("/api/v1/rules", guard(rules)),
        Route("/api/v1/rules/reload", guard(reload), methods=["POST"]),
    ]
