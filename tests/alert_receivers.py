"""Real receivers for alert notifications: an HTTP webhook server, an SMTP server (aiosmtpd)
and a Debian ``prometheus-alertmanager`` process, each on free loopback ports."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc

from conftest import ServerProcess, free_port, wait_until
from otlp_requests import gauge_request


class WebhookReceiver:
    """Records every POST (path, headers, JSON body); answers 500 to the first ``fail`` ones."""

    def __init__(self, fail: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail = fail
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"down for maintenance")
                    return
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str | None = None) -> list[Any]:
        return [r["body"] for r in list(self.requests) if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """aiosmtpd on a free port; ``messages`` holds (envelope from, recipients, raw text).

    With ``login`` = (user, password) and ``tls`` (an ssl server context), STARTTLS and then
    AUTH are required.
    """

    def __init__(self, login: tuple[str, str] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        self.logins: list[str] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any,  # noqa: N802
                                  envelope: Any) -> str:
                receiver.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.content.decode("utf-8", "replace")))
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         data: Any) -> AuthResult:
            user, password = data.login.decode(), data.password.decode()
            receiver.logins.append(user)
            return AuthResult(success=login == (user, password))

        self.port = free_port()
        auth: dict[str, Any] = {} if login is None else {
            "authenticator": authenticate, "auth_required": True, "tls_context": tls,
            "require_starttls": True}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **auth)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        raise AssertionError("prometheus-alertmanager is not installed (apt-get install -y "
                             "prometheus-alertmanager; scripts/test does it)")
    return found


class AlertmanagerProcess:
    """A real Alertmanager delivering every alert to ``webhook_url`` within about a second."""

    def __init__(self, tmp: Path, webhook_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "alertmanager.yml"
        config.write_text(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 100ms\n"
            "  group_interval: 1s\n  repeat_interval: 1h\n"
            f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {webhook_url}/am\n"
            "        send_resolved: true\n")
        self.log = open(tmp / "alertmanager.log", "wb")
        self.proc = subprocess.Popen(
            [alertmanager_binary(), f"--config.file={config}", f"--storage.path={tmp / 'am'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 30, message="alertmanager to be ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited {self.proc.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as r:
            result: list[dict[str, Any]] = json.load(r)
            return result

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def send_latency(server: ServerProcess, points: dict[str, float], at: float | None = None,
                 name: str = "request.latency") -> None:
    """One gauge point per route, at ``at`` (default now), over OTLP/gRPC."""
    t = int((at if at is not None else time.time()) * 1e9)
    with grpc.insecure_channel(server.grpc) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.Export(gauge_request(name, [({"route": r}, t, v) for r, v in points.items()],
                                  service="permits"), timeout=10)


def api_get(server: ServerProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://{server.api}{path}", timeout=10) as r:
        return json.load(r)


def api_post(server: ServerProcess, path: str) -> tuple[int, Any]:
    return api_request(server, "POST", path)


def api_request(server: ServerProcess, method: str, path: str, body: object = None
                ) -> tuple[int, Any]:
    """(status, JSON answer) of one API call, error statuses included; ``body`` goes as JSON."""
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"http://{server.api}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)
