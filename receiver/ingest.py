"""The export path both protocols share: authenticate, decode, queue, wait for the commit.

The response is sent only after the store has committed the points; rejected points are
reported in ``partial_success`` and the rest are stored.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Protocol

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from .decode import DecodedBatch, Decoder
from .errors import ExportError, Overloaded, Unauthenticated
from .payload import grpc_message

log = logging.getLogger("otel_hms.receiver")


class BatchSink(Protocol):
    """The store's writer as the receiver sees it."""

    def submit(self, batch: DecodedBatch) -> Future[int]: ...

    def incoming(self) -> AbstractContextManager[None]:
        """Held while a request is decoded, so a group commit may wait for its batch."""
        ...


class DecodeWorkers(Protocol):
    """Worker processes that decode serialized requests (``decode_pool.DecodePool``)."""

    def decode(self, body: bytes, inflate_limit: int | None = None
               ) -> tuple[DecodedBatch, Callable[[Future[int]], None] | None]: ...


class Ingest:
    """Decode requests and hand them to the store's writer."""

    def __init__(self, sink: BatchSink, decoder: Decoder, token: str | None = None,
                 busy_errors: tuple[type[Exception], ...] = (), commit_timeout: float = 30.0,
                 workers: DecodeWorkers | None = None):
        self.sink = sink
        self.decoder = decoder
        self.workers = workers
        self.token = token
        self.busy_errors = busy_errors
        self.commit_timeout = commit_timeout

    def check_auth(self, authorization: str | None) -> None:
        if self.token is None:
            return
        expected = f"Bearer {self.token}"
        if authorization is None or not hmac.compare_digest(authorization.encode(),
                                                            expected.encode()):
            raise Unauthenticated("missing or wrong bearer token: send the header "
                                  "'Authorization: Bearer <token>'")

    def start(self, request: ExportMetricsServiceRequest | bytes, endpoint: str,
              inflate_limit: int | None = None) -> tuple[DecodedBatch, Future[int] | None]:
        """Decode (a parsed or serialized request) and queue; returns the batch and the
        future of its commit.

        Serialized requests go to the decode workers when there are any.  With
        ``inflate_limit`` the bytes are a gRPC message that may still be compressed
        (``payload.grpc_message``): it is inflated where it is decoded, up to that size.
        """
        on_commit = None
        with self.sink.incoming():
            if not isinstance(request, bytes):
                batch = self.decoder.decode(request)
            elif self.workers is not None:
                batch, on_commit = self.workers.decode(request, inflate_limit)
            else:
                if inflate_limit is not None:
                    request = grpc_message(request, inflate_limit)
                batch = self.decoder.decode_bytes(request)
        if batch.rejected:
            log.warning("%s: rejected %d data points: %s", endpoint, batch.rejected,
                        batch.error_message)
        if not batch.accepted and not batch.series:
            return batch, None
        try:
            future = self.sink.submit(batch)
        except self.busy_errors as exc:
            raise Overloaded(f"store is busy ({exc}); retry later") from None
        if on_commit is not None:
            future.add_done_callback(on_commit)
        return batch, future

    def export_bytes(self, body: bytes, endpoint: str, inflate_limit: int | None = None
                     ) -> ExportMetricsServiceResponse:
        """``export`` of a serialized request (raises ``InvalidRequest`` if it is not one);
        ``inflate_limit`` as for ``start``."""
        return self.export(body, endpoint, inflate_limit)

    def export(self, request: ExportMetricsServiceRequest | bytes, endpoint: str,
               inflate_limit: int | None = None) -> ExportMetricsServiceResponse:
        batch, future = self.start(request, endpoint, inflate_limit)
        if future is not None:
            self._wait(future)
        return response_for(batch)

    async def export_async(self, request: ExportMetricsServiceRequest | bytes, endpoint: str
                           ) -> ExportMetricsServiceResponse:
        batch, future = await asyncio.to_thread(self.start, request, endpoint)
        if future is not None:
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), self.commit_timeout)
            except TimeoutError:
                raise Overloaded("store did not commit in time; retry later") from None
            except ExportError:
                raise
            except Exception as exc:
                raise Overloaded(f"store could not commit the batch ({exc}); retry") from None
        return response_for(batch)

    def _wait(self, future: Future[int]) -> None:
        try:
            future.result(self.commit_timeout)
        except TimeoutError:
            raise Overloaded("store did not commit in time; retry later") from None
        except ExportError:
            raise
        except Exception as exc:
            raise Overloaded(f"store could not commit the batch ({exc}); retry") from None


def response_for(batch: DecodedBatch) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    if batch.rejected or batch.errors:
        response.partial_success.rejected_data_points = batch.rejected
        response.partial_success.error_message = batch.error_message
    return response
