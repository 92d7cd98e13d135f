"""Fixtures that run the real thing: an ``otel-hms serve`` subprocess on free loopback ports."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

TESTS = Path(__file__).resolve().parent  # helpers beside the rooms: js/, scripts/, worker_hooks/
ROOT = TESTS.parent  # the repository

def pytest_configure(config: pytest.Config) -> None:
    """An editable install made before a room was added cannot find it: say what to do."""
    import importlib.util
    import tomllib

    rooms = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    missing = [name for name in rooms["package-dir"] if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(f"{', '.join(missing)} not importable: the installed otel-hms "
                                "predates them; run .venv/bin/pip install -e '.[test]' again")

def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


_EPHEMERAL = _ephemeral_range()
_rng = random.Random()


def free_port() -> int:
    """A loopback port free now, chosen *below* the kernel's ephemeral range.

    The port is released before the process under test binds it; outgoing connections (of
    this suite or anything else on the machine) take their local ports from the ephemeral
    range, so a port from there could be taken in between ("address already in use").
    """
    low = max(10000, _EPHEMERAL.start - 20000)
    for _ in range(200):
        port = _rng.randrange(low, _EPHEMERAL.start)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {low}-{_EPHEMERAL.start - 1}")


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class ServerProcess:
    """A running ``otel-hms serve`` with its addresses and a way to ask it SQL."""

    def __init__(self, db: Path, args: list[str], env: dict[str, str], log: Path,
                 ca: Path | None = None) -> None:
        self.db = db
        self.grpc_port, self.http_port, self.api_port = free_port(), free_port(), free_port()
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        self.http = f"127.0.0.1:{self.http_port}"
        self.api = f"127.0.0.1:{self.api_port}"
        self.http_url = f"http://{self.http}/v1/metrics"
        # With --tls-cert the API is HTTPS too; ``ca`` is the certificate's authority.
        self.api_url = f"{'https' if '--tls-cert' in args else 'http'}://{self.api}"
        self.ssl_context = ssl.create_default_context(cafile=str(ca)) if ca else None
        self.log = log
        self.token: str | None = None
        # Test data is often months old: keep it raw unless a test asks for retention.
        cmd = [sys.executable, "-m", "otel_hms", "serve", "--db", str(db),
               "--otlp-grpc", self.grpc, "--otlp-http", self.http, "--api", self.api,
               "--retention-raw", "forever", *args]
        self._log_file = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env})

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"otel-hms serve exited with {self.proc.returncode}:\n"
                                 + self.log.read_text())
        try:
            with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=1,
                                        context=self.ssl_context) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 30.0) -> ServerProcess:
        wait_until(self.ready, timeout, message="otel-hms serve to be ready")
        return self

    def export(self, request: Any, timeout: float = 30.0) -> ExportMetricsServiceResponse:
        """Send one ``ExportMetricsServiceRequest`` over OTLP/HTTP protobuf; it must be stored
        (the server answers only after the commit).  Returns the answer, whose
        ``partial_success`` says what was refused."""
        post = urllib.request.Request(self.http_url, data=request.SerializeToString(),
                                      method="POST",
                                      headers={"Content-Type": "application/x-protobuf"})
        if self.token:
            post.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(post, timeout=timeout) as reply:
            assert reply.status == 200
            return ExportMetricsServiceResponse.FromString(reply.read())

    def sql_result(self, query: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.api_url}/api/v1/sql", data=json.dumps({"sql": query}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=60, context=self.ssl_context) as r:
            result: dict[str, Any] = json.load(r)
            return result

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Rows as dicts, through the server's read-only SQL endpoint."""
        result = self.sql_result(query)
        return [dict(zip(result["columns"], row)) for row in result["rows"]]

    def scalar(self, query: str) -> Any:
        rows = self.sql_result(query)["rows"]
        return rows[0][0] if rows else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start ``otel-hms serve`` subprocesses; every one is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*args: str, db: Path | None = None, env: dict[str, str] | None = None,
              wait: bool = True, ca: Path | None = None) -> ServerProcess:
        server = ServerProcess(db or tmp_path / "store.duckdb", list(args), env or {},
                               tmp_path / f"serve-{len(started)}.log", ca)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    """One running server on a fresh store."""
    return start_server()
