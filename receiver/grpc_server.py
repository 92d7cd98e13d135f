"""OTLP/gRPC: ``opentelemetry.proto.collector.metrics.v1.MetricsService/Export``.

grpcio enforces the receive size limit on the message as sent (RESOURCE_EXHAUSTED); its
per-message decompression is off, so a gzip or deflate message reaches the decoder (a decode
worker) as sent and is inflated there, against the same limit (``payload.grpc_message``):
the server process then neither inflates nor copies the inflated bytes.  The request bytes
are parsed here (see ``_MetricsService``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc

from .errors import RefusedExport
from .ingest import Ingest, sender_of

log = logging.getLogger("otel_hms.receiver")


EXPORT_METHOD = "Export"
SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


class _MetricsService:
    """``Export`` taking the raw request bytes.

    grpcio's generated servicer would parse the body itself and answer an undecodable one with
    INTERNAL "Exception deserializing request!", which exporters log as a server fault; parsing
    here gives INVALID_ARGUMENT with what is wrong, as on OTLP/HTTP.
    """

    def __init__(self, ingest: Ingest, max_request_bytes: int) -> None:
        self.ingest = ingest
        self.max_request_bytes = max_request_bytes

    def export(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            metadata = dict(context.invocation_metadata())
            auth = metadata.get("authorization")
            self.ingest.check_auth(auth if isinstance(auth, str) else None)
            agent = metadata.get("user-agent")
            return self.ingest.export_bytes(
                body, "otlp/grpc", self.max_request_bytes,
                sender_of(context.peer(), agent if isinstance(agent, str) else None),
            ).SerializeToString()
        except RefusedExport as exc:
            context.abort(exc.grpc_code, str(exc))
            raise  # unreachable: abort raises

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(self.export)
        return grpc.method_handlers_generic_handler(SERVICE, {EXPORT_METHOD: method})


class AddressInUse(Exception):
    pass


def start_grpc(ingest: Ingest, address: str, max_request_bytes: int,
               tls: tuple[bytes, bytes] | None = None,
               workers: int = 32) -> tuple[grpc.Server, int]:
    """Start serving on ``address``; returns the server and the bound port."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            ("grpc.per_message_decompression", 0),
        ],
    )
    server.add_generic_rpc_handlers((_MetricsService(ingest, max_request_bytes).handler(),))
    try:
        if tls:
            creds = grpc.ssl_server_credentials([(tls[1], tls[0])])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if not port:
        raise AddressInUse(f"--otlp-grpc: cannot listen on {address} (address in use or "
                           "not local); pick another HOST:PORT")
    server.start()
    return server, port
