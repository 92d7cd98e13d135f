"""The Prometheus HTTP API under ``/prometheus`` (Grafana's data source URL
``http://HOST:4320/prometheus``), behind the same bearer token as the rest of the API.

Only endpoints that answer from what the engine can really do are mounted
(``otel_hms.query.promql.api`` has the answers); every other path answers Prometheus' own
``404 page not found``.  GET and POST are equivalent, and as with Go's ``FormValue`` a value
in a form-encoded body wins over the same key in the URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from otel_hms import __version__
from otel_hms.query.promql import api
from otel_hms.query.promql.store import PromStore

MAX_FORM_BYTES = 10 << 20  # Go's ParseForm reads at most 10 MB of a body


@dataclass(frozen=True)
class Form:
    """The request's form as Go parses it: ``values`` has the first value of each key, body
    values first (``Request.FormValue``); ``matches`` every ``match[]``, body then URL."""

    values: dict[str, str]
    matches: list[str]


async def _form(request: Request) -> Form | Response:
    pairs: list[tuple[str, str]] = []
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _json(api.failure(api.ApiError("bad_data", "http: POST too large")))
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    pairs += request.query_params.multi_items()
    values: dict[str, str] = {}
    for key, value in pairs:
        values.setdefault(key, value)
    return Form(values, [value for key, value in pairs if key == "match[]"])


def _json(answer: api.Answer) -> Response:
    if answer.status == 204:
        return Response(status_code=204)
    return Response(answer.body, answer.status, media_type="application/json")


def prometheus_mount(store: PromStore, authorized: Callable[[Request], bool],
                     unauthorized: Callable[[], Response]) -> Mount:
    """``/prometheus/api/v1/…``."""

    def endpoint(answer: Callable[[Form, Request], api.Answer]
                 ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if not authorized(request):
                return unauthorized()
            form = await _form(request)
            if isinstance(form, Response):
                return form
            # the parser holds the GIL for up to ~0.3 s on the largest query the guard lets
            # through: off the event loop, at least the loop's other work interleaves
            return _json(await asyncio.to_thread(answer, form, request))
        return handle

    async def not_found(request: Request) -> Response:
        return PlainTextResponse("404 page not found\n", 404)

    routes: list[BaseRoute] = [
        Route("/api/v1/query", endpoint(
            lambda form, _: api.instant_query(form.values, time.time_ns() // 1_000_000, store)),
            methods=["GET", "POST"]),
        Route("/api/v1/query_range", endpoint(
            lambda form, _: api.range_query(form.values, store)), methods=["GET", "POST"]),
        Route("/api/v1/series", endpoint(
            lambda form, _: api.series(form.values, form.matches, store)),
            methods=["GET", "POST"]),
        Route("/api/v1/labels", endpoint(
            lambda form, _: api.labels(form.values, form.matches, store)),
            methods=["GET", "POST"]),
        Route("/api/v1/label/{name}/values", endpoint(
            lambda form, request: api.label_values(request.path_params["name"], form.values,
                                                   form.matches, store)), methods=["GET"]),
        Route("/api/v1/query_exemplars", endpoint(
            lambda form, _: api.query_exemplars(form.values, store)), methods=["GET", "POST"]),
        Route("/api/v1/metadata", endpoint(lambda form, _: api.metadata(form.values, store)),
              methods=["GET"]),
        Route("/api/v1/status/buildinfo", endpoint(
            lambda form, _: api.buildinfo(__version__)), methods=["GET"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Mount("/prometheus", routes=routes)
