"""The web page on the ``--api`` address: ``/``, its assets, and ``GET /api/v1/dashboards``.

The page and its assets hold no data, so they load without the bearer token (a browser cannot
send one on navigation); every data request the page makes carries the token, which it asks
for when the API answers 401.  Assets come from the package itself, and a Content-Security-
Policy of ``'self'`` keeps the page from loading anything from elsewhere.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from otel_hms.common.auth import UNAUTHORIZED
from otel_hms.http.alerting import bearer_check

from .spec import Dashboard, DashboardError, dashboard_files, load_dashboard

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}


def _assets() -> dict[str, bytes]:
    """Every file of ``static/`` by name, read once."""
    folder = resources.files(__package__ or "otel_hms.dashboard").joinpath("static")
    return {item.name: item.read_bytes() for item in folder.iterdir()
            if item.is_file() and Path(item.name).suffix in _TYPES}


def read_dashboards(directory: str | None) -> dict[str, Any]:
    """The dashboards of ``directory`` as JSON, re-read per request so edits show on reload;
    a file that has become invalid is reported in ``errors`` (one line per problem) and the
    others still load."""
    if directory is None:
        return {"dashboards": [], "errors": []}
    dashboards: list[Dashboard] = []
    errors: list[str] = []
    try:
        paths = dashboard_files(directory)
    except DashboardError as exc:
        return {"dashboards": [], "errors": list(exc.problems)}
    for path in paths:
        try:
            dashboards.append(load_dashboard(path))
        except DashboardError as exc:
            errors.extend(exc.problems)
    return {"dashboards": [d.to_json() for d in dashboards], "errors": errors}


def routes(directory: str | None, token: str | None) -> list[Route]:
    """Routes for ``api_app``'s ``extra_routes``; the dashboards need the API's token."""
    assets = _assets()
    authorized = bearer_check(token)

    def asset(name: str) -> Response:
        body = assets.get(name)
        if body is None:
            return JSONResponse({"error": f"no asset {name!r}"}, 404)
        return Response(body, media_type=_TYPES[Path(name).suffix], headers=_HEADERS)

    async def index(request: Request) -> Response:
        return asset("index.html")

    async def static(request: Request) -> Response:
        return asset(request.path_params["name"])

    async def favicon(request: Request) -> Response:
        return RedirectResponse("/static/favicon.svg", 301)

    async def dashboards(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": UNAUTHORIZED}, 401,
                                headers={"WWW-Authenticate": 'Bearer realm="otel-hms"'})
        return JSONResponse(await asyncio.to_thread(read_dashboards, directory))

    return [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/favicon.ico", favicon),
        Route("/api/v1/dashboards", dashboards),
    ]
