"""The HTTP API on the ``--api`` address: health, status, queries, SQL, the live stream, export.

Everything but ``/healthz``, ``/readyz`` and the OpenAPI document sits behind the optional
bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otel_hms.common.auth import UNAUTHORIZED, bearer_matches
from otel_hms.http.export import export_endpoint, export_root
from otel_hms.http.openapi import openapi_document
from otel_hms.http.prometheus import prometheus_mount
from otel_hms.http.query import routes_handlers
from otel_hms.http.sql import SqlStats, sql_endpoint
from otel_hms.query.promql.store import PromStore
from otel_hms.query.service import QueryService
from otel_hms.settings import Settings
from otel_hms.storage.disk_failure import StoreUnavailable, disk_failure


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="otel-hms"'} if status == 401 else None
    return JSONResponse({"error": message}, status, headers=headers)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """Any endpoint reading the store while DuckDB has it closed after a failed write (a
    full disk), until it is reopened: 503 with the reason, retry shortly."""
    failure = disk_failure(exc) if isinstance(exc, duckdb.FatalException) else None
    message = failure.reason if failure is not None else str(exc)
    return JSONResponse({"error": message}, 503, headers={"Retry-After": "1"})


def api_app(service: QueryService, settings: Settings,
            status: Callable[[], dict[str, Any]], unavailable: Callable[[], str | None],
            commits: Callable[[], int], extra_routes: list[Route] | None = None) -> Starlette:
    token = settings.auth_token
    sql_stats = SqlStats()

    def authorized(request: Request) -> bool:
        allowed: bool = bearer_matches(token, request.headers.get("authorization"))
        return allowed

    def unauthorized() -> Response:
        return _error(401, UNAUTHORIZED)

    async def health(request: Request) -> Response:
        """/healthz and /readyz: 200 while the server can take exports, else 503 and why."""
        reason = unavailable()
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, 503)
        return JSONResponse({"status": "ok"})

    async def api_status(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return JSONResponse({**status(), "sql": sql_stats.as_json()})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    handlers = routes_handlers(service, authorized, unauthorized, commits)
    return Starlette(routes=[
        Route("/healthz", health),
        Route("/readyz", health),
        Route("/api/v1/status", api_status),
        Route("/api/v1/sql", sql_endpoint(service.con, settings, authorized, unauthorized,
                                          sql_stats), methods=["POST"]),
        Route("/api/v1/export", export_endpoint(
            service.con, export_root(settings.export_root, settings.db), authorized,
            unauthorized), methods=["POST"]),
        Route("/api/v1/openapi.json", openapi),
        *(Route(path, handler) for path, handler in handlers.items()),
        prometheus_mount(PromStore(service.con, service.timeout), authorized, unauthorized),
        *(extra_routes or []),
    ], exception_handlers={StoreUnavailable: _store_unavailable,
                           duckdb.FatalException: _store_unavailable})
