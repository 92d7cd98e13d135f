"""OTLP/HTTP: ``POST /v1/metrics`` with protobuf or JSON bodies, answered in the same type.

Error bodies are ``google.rpc.Status`` messages in the request's content type, as the OTLP
specification asks, so Collectors and SDKs can log what was wrong.
"""

from __future__ import annotations

import asyncio
import json

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import Overloaded, RefusedExport, TooLarge, Unauthenticated, Unsupported
from .ingest import Ingest, sender_of
from .payload import decompress, parse_json

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _respond(media: str, message: ExportMetricsServiceResponse | status_pb2.Status,
             status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if media == JSON:
        body = json.dumps(json_format.MessageToDict(message)).encode()
        return Response(body, status, headers=headers, media_type=JSON)
    return Response(message.SerializeToString(), status, headers=headers, media_type=PROTOBUF)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes is over the limit of {limit} bytes; "
                       "send smaller batches or raise max_request_bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body is over the limit of {limit} bytes; send smaller "
                           "batches or raise max_request_bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes, encoding: str, media: str, limit: int
           ) -> ExportMetricsServiceRequest | bytes:
    """The request: parsed from JSON, or protobuf bytes for the decoder to walk."""
    body = decompress(body, encoding, limit)
    return parse_json(body) if media == JSON else body


def otlp_http_app(ingest: Ingest, max_request_bytes: int) -> Starlette:
    async def export(request: Request) -> Response:
        media = _media_type(request)
        reply_media = JSON if media == JSON else PROTOBUF
        try:
            ingest.check_auth(request.headers.get("authorization"))
            if media not in (PROTOBUF, JSON):
                raise Unsupported(f"Content-Type {media or '(none)'!r} is not supported; send "
                                  f"{PROTOBUF} or {JSON}")
            body = await _read_body(request, max_request_bytes)
            # Inflating and parsing a 64 MiB body takes a while: off the event loop.
            message = await asyncio.to_thread(
                _parse, body, request.headers.get("content-encoding", ""), media,
                max_request_bytes)
            peer = f"{request.client.host}:{request.client.port}" if request.client else None
            response = await ingest.export_async(
                message, "otlp/http", sender_of(peer, request.headers.get("user-agent")))
        except RefusedExport as exc:
            headers = None
            if isinstance(exc, Overloaded):
                headers = {"Retry-After": str(exc.retry_after_seconds)}
            elif isinstance(exc, Unauthenticated):
                headers = {"WWW-Authenticate": 'Bearer realm="otel-hms"'}
            status = status_pb2.Status(code=exc.grpc_code.value[0], message=str(exc))
            return _respond(reply_media, status, exc.http_status, headers)
        return _respond(reply_media, response)

    async def wrong_method(request: Request) -> Response:
        return Response("OTLP/HTTP metrics: POST /v1/metrics\n", 405,
                        headers={"Allow": "POST"}, media_type="text/plain")

    return Starlette(routes=[
        Route("/v1/metrics", export, methods=["POST"]),
        Route("/v1/metrics", wrong_method, methods=["GET", "PUT", "DELETE"]),
    ])
