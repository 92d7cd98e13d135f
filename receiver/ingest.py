"""The export path both protocols share: authenticate, decode, queue, wait for the commit.

The response is sent only after the store has committed the points; rejected points
(malformed, or refused by a check such as the raw retention's or a cardinality limit) are
reported in ``partial_success``, logged at WARNING with the sender (``RejectionLog``: at most
one line per reason every ``LOG_INTERVAL`` seconds), and counted per reason for
/api/v1/status (``Rejections``); the rest are stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Protocol

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from otel_hms.common.auth import UNAUTHORIZED, bearer_matches
from otel_hms.storage.batch import DecodedBatch

from .decode import Decoder
from .errors import Overloaded, RefusedExport, Unauthenticated
from .payload import grpc_message

log = logging.getLogger("otel_hms.receiver")

LOG_INTERVAL = 10.0


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


class Rejections:
    """Points rejected in ``partial_success`` since start, per reason, and the last
    rejection of each reason (when, from whom, what the sender was told)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[str, int] = {}
        self._last: dict[str, dict[str, str]] = {}

    def count(self, batch: DecodedBatch, sender: str) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        with self._lock:
            for reason, points in batch.rejected_by_reason().items():
                self._points[reason] = self._points.get(reason, 0) + points
                self._last[reason] = {"time": now, "sender": sender,
                                      "message": batch.error_message}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"rejected_points": dict(self._points),
                    "last_rejected": {k: dict(v) for k, v in self._last.items()}}


class RejectionLog:
    """The WARNING line of a request with rejected points, at most one per reason every
    ``interval`` seconds, so a sender refused over and over (a cardinality explosion, a
    backfill past the retention) cannot flood the log; the next line of a reason says how
    many requests and points went unlogged since its last one."""

    def __init__(self, interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._logged: dict[str, float] = {}  # reason -> when its last line was written
        self._skipped: dict[str, list[int]] = {}  # reason -> [requests, points] since

    def log(self, batch: DecodedBatch, endpoint: str, sender: str) -> None:
        reasons = batch.rejected_by_reason()
        now = self._clock()
        with self._lock:
            if all(now - self._logged.get(r, -self.interval) < self.interval for r in reasons):
                for reason, points in reasons.items():
                    skipped = self._skipped.setdefault(reason, [0, 0])
                    skipped[0] += 1
                    skipped[1] += points
                return
            unlogged = [0, 0]
            for reason in reasons:
                self._logged[reason] = now
                requests, points = self._skipped.pop(reason, (0, 0))
                unlogged[0] = max(unlogged[0], requests)
                unlogged[1] += points
        more = (f" (and {unlogged[0]} more requests with {unlogged[1]} rejected points since "
                f"the last line like this)" if unlogged[0] else "")
        log.warning("%s from %s: rejected %d data points: %s%s", endpoint,
                    sender or "unknown sender", batch.rejected, batch.error_message, more)


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
        self.rejections = Rejections()
        self.rejection_log = RejectionLog()

    def check_auth(self, authorization: str | None) -> None:
        if not bearer_matches(self.token, authorization):
            raise Unauthenticated(UNAUTHORIZED)

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
        if not batch.accepted and not batch.series:
            return batch, None
        try:
            future = self.sink.submit(batch)
        except self.busy_errors as exc:
            raise Overloaded(f"the store cannot take points now: {exc}; retry later") from None
        if on_commit is not None:
            future.add_done_callback(on_commit)
        return batch, future

    def export_bytes(self, body: bytes, endpoint: str, inflate_limit: int | None = None,
                     sender: str = "") -> ExportMetricsServiceResponse:
        """``export`` of a serialized request (raises ``InvalidRequest`` if it is not one);
        ``inflate_limit`` as for ``start``."""
        return self.export(body, endpoint, inflate_limit, sender)

    def export(self, request: ExportMetricsServiceRequest | bytes, endpoint: str,
               inflate_limit: int | None = None, sender: str = ""
               ) -> ExportMetricsServiceResponse:
        """Store a request's points; returns the reply once they are committed.

        ``sender`` (peer address, user agent) names who sent it in the log and status."""
        batch, future = self.start(request, endpoint, inflate_limit)
        if future is not None:
            self._wait(future)
        return self._reply(batch, endpoint, sender)

    async def export_async(self, request: ExportMetricsServiceRequest | bytes, endpoint: str,
                           sender: str = "") -> ExportMetricsServiceResponse:
        batch, future = await asyncio.to_thread(self.start, request, endpoint)
        if future is not None:
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), self.commit_timeout)
            except TimeoutError:
                raise Overloaded("store did not commit in time; retry later") from None
            except RefusedExport:
                raise
            except Exception as exc:
                raise Overloaded(f"store could not commit the batch ({exc}); retry") from None
        return self._reply(batch, endpoint, sender)

    def _reply(self, batch: DecodedBatch, endpoint: str, sender: str
               ) -> ExportMetricsServiceResponse:
        """The response, once the rest is stored; rejections are logged and counted here,
        once per request answered (a request that fails is retried and counted then)."""
        if batch.rejected:
            self.rejection_log.log(batch, endpoint, sender)
            self.rejections.count(batch, sender)
        return response_for(batch)

    def _wait(self, future: Future[int]) -> None:
        try:
            future.result(self.commit_timeout)
        except TimeoutError:
            raise Overloaded("store did not commit in time; retry later") from None
        except RefusedExport:
            raise
        except Exception as exc:
            raise Overloaded(f"store could not commit the batch ({exc}); retry") from None


def sender_of(peer: str | None, user_agent: str | None) -> str:
    """Who sent a request, as the log and /api/v1/status name it:
    ``127.0.0.1:50312 (OTel-OTLP-Exporter-Python/1.45.2)``.

    gRPC names peers ``ipv4:HOST:PORT`` or ``ipv6:[HOST]:PORT``; the scheme is dropped."""
    address = peer or "unknown address"
    scheme, sep, rest = address.partition(":")
    if sep and scheme in ("ipv4", "ipv6", "unix"):
        address = rest
    return f"{address} ({user_agent})" if user_agent else address


def response_for(batch: DecodedBatch) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    if batch.rejected or batch.errors:
        response.partial_success.rejected_data_points = batch.rejected
        response.partial_success.error_message = batch.error_message
    return response
