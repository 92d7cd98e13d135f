"""A parking-permit web service, instrumented with the stock OpenTelemetry ASGI middleware.

``otel_hms.configure`` sets up the SDK (the endpoint and everything else from the standard
``OTEL_*`` variables); ``OpenTelemetryMiddleware`` from ``opentelemetry-instrumentation-asgi``
records ``http.server.request.duration`` and ``http.server.active_requests`` for every
request; the handlers add one business metric of their own.  Run it with::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_METRIC_EXPORT_INTERVAL=5000 \\
    OTEL_SEMCONV_STABILITY_OPT_IN=http uvicorn app:app --port 8000
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import otel_hms

meter = otel_hms.configure(service_name="permits-web")
applications = meter.create_counter("permit_applications_total", unit="{application}",
                                    description="Parking-permit applications received")


async def permit(request: Request) -> JSONResponse:
    return JSONResponse({"permit": request.path_params["number"], "status": "granted"})


async def apply(request: Request) -> JSONResponse:
    zone = (await request.json()).get("zone", "unknown")
    applications.add(1, {"zone": zone})
    return JSONResponse({"zone": zone, "status": "received"}, status_code=201)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    # uvicorn ends by re-raising SIGTERM, which skips exit hooks: export the last points here.
    otel_hms.shutdown()


app = OpenTelemetryMiddleware(Starlette(routes=[
    Route("/permits/{number}", permit),
    Route("/applications", apply, methods=["POST"]),
], lifespan=lifespan))
