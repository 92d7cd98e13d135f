"""``otel-hms serve``: the store, its writer, the OTLP receivers and the API in one process.

Start-up binds every socket before anything is served, so a taken port or a locked file is a
one-line error, and says "ready" once the decode workers can take requests.  SIGTERM/SIGINT
stop the receivers (in-flight exports finish), drain the writer, checkpoint and exit 0 (a
checkpoint the disk refuses is one warning: the write-ahead log keeps what was committed);
decode workers that keep dying stop the server the same way, and ``serve`` raises
``DecodeWorkersFailed`` (``Error: …``, exit 1).  A disk that fails the store's writes makes
the server unavailable until it takes them again (``storage.disk_failure``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from otel_hms.alerting.rule_files import load_rules
from otel_hms.alerting.service import Alerting
from otel_hms.config import ConfigError, duration_setting, parse_address
from otel_hms.dashboard import dashboard_routes, load_dashboards
from otel_hms.http.alerting import routes as alerting_routes
from otel_hms.http.api import api_app
from otel_hms.http.cardinality import cardinality_route
from otel_hms.query import install_helpers
from otel_hms.query.service import AnswerLimits, QueryService
from otel_hms.receiver.decode import Decoder
from otel_hms.receiver.decode_pool import DecodePool, DecodeWorkersFailed
from otel_hms.receiver.grpc_server import start_grpc
from otel_hms.receiver.http_server import otlp_http_app
from otel_hms.receiver.ingest import Ingest
from otel_hms.settings import Settings
from otel_hms.storage import CheckpointFailed, DuckDBStore, DuckDBStoreOptions, Retention, Store

log = logging.getLogger("otel_hms")


def _bind(address: str, flag: str) -> socket.socket:
    host, port = parse_address(address, flag)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{flag}: cannot listen on {address} ({exc.strerror}); pick another "
                          "HOST:PORT or stop what holds it") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _retention(s: Settings) -> Retention:
    """How long the settings keep each resolution."""
    return Retention(raw=duration_setting("retention_raw", s.retention_raw),
                     minute=duration_setting("retention_1m", s.retention_1m),
                     hour=duration_setting("retention_1h", s.retention_1h))


def _store_options(s: Settings, kept: Retention) -> DuckDBStoreOptions:
    """The store as ``serve`` runs it: SQL helpers installed and its configuration locked
    before the API can take user SQL, a disk that fails writes waited out, the limits,
    roll-ups and retention (``kept``) of the settings."""
    return DuckDBStoreOptions(
        s.db, s.memory_limit, prepare=install_helpers, lock_configuration=True,
        recover_from_disk_failures=True, max_pending_points=s.max_pending_points,
        max_series=s.max_series, max_series_per_metric=s.max_series_per_metric,
        series_cache_size=s.series_cache_size,
        retention=kept,
        retention_raw_setting=str(s.retention_raw).strip(),
        rollup_delay=duration_setting("rollup_delay", s.rollup_delay) or dt.timedelta(0),
        rollup_interval_seconds=s.rollup_interval_seconds)


def _uvicorn(app: Any, settings: Settings, tls: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False,
        ssl_certfile=settings.tls_cert if tls else None,
        ssl_keyfile=settings.tls_key if tls else None,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


class Server:
    """Everything `serve` runs; ``start`` then ``wait`` then ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_signal: int | None = None  # set by the SIGTERM/SIGINT handler
        self.failure: str | None = None  # set when the decode workers keep dying
        self._ready = False
        self._stopping = False
        self.alerting: Alerting | None = None
        self.pool: DecodePool | None = None

    def start(self) -> None:
        s = self.settings
        http_sock = _bind(s.otlp_http, "--otlp-http")
        api_sock = _bind(s.api, "--api")
        load_rules(s.rules)  # a bad rules file stops start-up before the store is opened
        load_dashboards(s.dashboards)  # and so does a bad dashboard
        kept = _retention(s)
        # Readers (queries, alerting, cardinality) take cursors of the store; the receiver
        # hands its writer the batches.
        self.store: Store = DuckDBStore.open(_store_options(s, kept))
        self.writer = self.store.writer
        api_url = f"{'https' if s.tls_cert else 'http'}://{s.api}"
        alerting = Alerting(self.store, s.rules, s.sql_timeout_seconds, s.sql_row_limit,
                            api_url)
        decoder = Decoder(s.max_attributes_per_point, known=self.writer.known,
                          series_cache_size=s.series_cache_size)
        if s.decode_workers > 0:
            self.pool = DecodePool(s.decode_workers, s.max_attributes_per_point,
                                   on_failure=self._workers_failed,
                                   series_cache_size=s.series_cache_size)
        self.ingest = ingest = Ingest(self.writer, decoder, s.auth_token,
                                      busy_errors=self.store.busy_errors,
                                      workers=self.pool)
        tls = None
        if s.tls_cert and s.tls_key:  # validate() has both or neither
            with open(s.tls_cert, "rb") as c, open(s.tls_key, "rb") as k:
                tls = (c.read(), k.read())
        self.grpc, _ = start_grpc(ingest, s.otlp_grpc, s.max_request_bytes, tls)
        self.http = _uvicorn(otlp_http_app(ingest, s.max_request_bytes), s, tls is not None)
        self.maintenance = self.store.maintenance
        self.maintenance.start()
        self.queries = QueryService(self.store, s.sql_timeout_seconds,
                                    self.maintenance.known_watermarks, kept.raw,
                                    AnswerLimits(s.query_max_series, s.query_max_points))
        self.api = _uvicorn(api_app(self.queries, s, self.status, self.unavailable,
                                    lambda: self.writer.stats.commits,
                                    alerting_routes(lambda: self.alerting, s.auth_token)
                                    + dashboard_routes(s.dashboards, s.auth_token)
                                    + [cardinality_route(self.store, s.sql_timeout_seconds,
                                                         self.writer.limits.usage,
                                                         s.auth_token)]),
                            s, tls is not None)
        self._loop_thread = threading.Thread(
            target=lambda: asyncio.run(self._serve_http(http_sock, api_sock)),
            name="otel-hms-http", daemon=True)
        self._loop_thread.start()
        deadline = time.monotonic() + 30
        while not (self.http.started and self.api.started):
            if time.monotonic() > deadline or not self._loop_thread.is_alive():
                raise RuntimeError("HTTP servers did not start")
            time.sleep(0.01)
        if self.pool is not None:
            try:
                self.pool.wait_ready()
            except DecodeWorkersFailed:
                self.stop()
                raise
        alerting.start()
        self.alerting = alerting
        self._ready = True
        log.info("ready: OTLP gRPC %s, OTLP HTTP %s, API %s, store %s",
                 s.otlp_grpc, s.otlp_http, api_url, s.db)

    async def _serve_http(self, http_sock: socket.socket, api_sock: socket.socket) -> None:
        await asyncio.gather(self.http.serve(sockets=[http_sock]),
                             self.api.serve(sockets=[api_sock]))

    def status(self) -> dict[str, Any]:
        return {
            "ingest": self.ingest.rejections.status(),
            "writer": dataclasses.asdict(self.writer.stats),
            "pending_points": self.writer.pending_points,
            "series": self.writer.limits.total,
            "cardinality": self.writer.limits.usage(),
            "rollups": self.maintenance.status(),
            "store": {"unavailable": self.writer.unavailable, "reopens": self.store.reopens},
            **({"decode": dataclasses.asdict(self.pool.status())} if self.pool else {}),
        }

    def unavailable(self) -> str | None:
        """Why the server cannot take exports now (/healthz and /readyz answer 503 with it),
        or None when it can."""
        if self._stopping:
            return "shutting down"
        store = self.store.unavailable()
        if store is not None:
            return store
        workers = self.pool.unavailable() if self.pool is not None else None
        return workers or (None if self._ready else "starting")

    def _workers_failed(self, reason: str) -> None:
        self.failure = reason  # wait() returns, and serve() stops the server

    def wait(self) -> None:
        """Return once SIGTERM or SIGINT has arrived, or the decode workers keep dying.

        The signal handler only assigns ``stop_signal``: a handler that set a
        ``threading.Event`` could deadlock, since it runs in this thread and may interrupt it
        while it holds the event's own lock inside ``Event.wait`` (seen: a SIGTERM one second
        after start-up left ``serve`` running until killed).
        """
        while self.stop_signal is None and self.failure is None:
            time.sleep(0.1)

    def stop(self) -> None:
        """Finish in-flight exports, commit everything queued, checkpoint and close."""
        self._ready = False
        self._stopping = True
        log.info("shutting down: finishing in-flight exports")
        grpc_done = self.grpc.stop(grace=5)
        grpc_done.wait(10)
        self.http.should_exit = True
        self.api.should_exit = True
        self._loop_thread.join(10)
        if self.pool is not None:
            self.pool.close()
        if self.alerting is not None:
            self.alerting.stop()
        self._close_store()

    def _close_store(self) -> None:
        """Stop the roll-ups, drain the writer, checkpoint and close; a disk that refuses
        the checkpoint costs nothing committed (the write-ahead log keeps it, the next start
        replays it), so it is one warning."""
        try:
            self.store.close()
        except CheckpointFailed as exc:
            log.warning("stopped; the store could not be checkpointed (%s): every committed "
                        "point is in its write-ahead log %s.wal, which the next start "
                        "replays (free space on its disk first)", exc.detail,
                        self.settings.db)
        else:
            log.info("stopped; store closed cleanly")


def serve(settings: Settings,
          companion: Callable[[Server], Callable[[], None]] | None = None) -> int:
    """Run until SIGTERM/SIGINT.  ``companion`` (e.g. the demo's driver) is started once the
    server is ready and stopped, by the function it returns, before the server stops."""
    server = Server(settings)

    def on_signal(signum: int, frame: object) -> None:
        server.stop_signal = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_hangup(signum: int, frame: object) -> None:
        if server.alerting is not None:  # reload off the signal handler: it takes a while
            threading.Thread(target=server.alerting.reload, name="rules-reload",
                             daemon=True).start()

    signal.signal(signal.SIGHUP, on_hangup)
    server.start()
    stop_companion = companion(server) if companion is not None else None
    try:
        server.wait()
    finally:
        if stop_companion is not None:
            stop_companion()
        server.stop()
    if server.failure is not None:
        raise DecodeWorkersFailed(server.failure)
    return 0
