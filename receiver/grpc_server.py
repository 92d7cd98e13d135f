"""OTLP/gRPC: ``opentelemetry.proto.collector.metrics.v1.MetricsService/Export``.

grpcio enforces the receive size limit (RESOURCE_EXHAUSTED) and undoes gzip/deflate itself.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from .errors import ExportError
from .ingest import Ingest

log = logging.getLogger("otel_hms.receiver")


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def Export(self, request: ExportMetricsServiceRequest,  # noqa: N802 (gRPC's name)
               context: grpc.ServicerContext) -> ExportMetricsServiceResponse:
        try:
            metadata = dict(context.invocation_metadata())
            auth = metadata.get("authorization")
            self.ingest.check_auth(auth if isinstance(auth, str) else None)
            return self.ingest.export(request, "otlp/grpc")
        except ExportError as exc:
            context.abort(exc.grpc_code, str(exc))
            raise  # unreachable: abort raises


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
        ],
    )
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _MetricsService(ingest), server)
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
