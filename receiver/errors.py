"""What can go wrong with an export, each error carrying the status a sender's retry logic needs.

- ``InvalidRequest``: bad data, the sender must not retry (gRPC INVALID_ARGUMENT / HTTP 400).
- ``TooLarge``: over the size limit (RESOURCE_EXHAUSTED without RetryInfo / HTTP 413).
- ``Unsupported``: a content type or encoding we do not read (UNIMPLEMENTED / HTTP 415).
- ``Unauthenticated``: missing or wrong bearer token (UNAUTHENTICATED / HTTP 401).
- ``Overloaded``: the store cannot take points now (queue full, disk failing, shutting
  down), retry later (UNAVAILABLE / HTTP 503).
"""

from __future__ import annotations

import grpc


class RefusedExport(Exception):
    """An OTLP export the receiver did not take (all of it): the sender is told why."""

    grpc_code = grpc.StatusCode.INTERNAL
    http_status = 500


class InvalidRequest(RefusedExport):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class TooLarge(RefusedExport):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413


class Unsupported(RefusedExport):
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
    http_status = 415


class Unauthenticated(RefusedExport):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class Overloaded(RefusedExport):
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    retry_after_seconds = 1
