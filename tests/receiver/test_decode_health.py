"""A server that cannot ingest is not healthy: /healthz and /readyz answer 503 with the reason
while no decode worker can take a request, and decode workers that keep dying stop ``serve``
with a one-line ``Error:`` (exit 1) after an ERROR carrying the worker's stderr.

Workers are made slow to start or unable to import their package for real, by the
``tests/worker_hooks`` start-up hook (see its docstring), and killed for real with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from conftest import TESTS, ServerProcess, StartServer, wait_until

HOOKS = TESTS / "worker_hooks"
OK = (200, {"status": "ok"})
WORKER_MISSING = (f"{sys.executable}: Error while finding module specification for "
                  "'otel_hms.receiver.decode_worker' (ModuleNotFoundError: No module named "
                  "'otel_hms.receiver')")


def hooked(mode: str) -> dict[str, str]:
    """The environment that puts the worker hook in ``mode`` (``hold:PATH``, ``hide:PATH``)."""
    path = os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "OTEL_HMS_TEST_WORKER": mode}


def health(server: ServerProcess, path: str) -> tuple[int, Any]:
    """The status and JSON body of a health endpoint; (0, None) while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://{server.api}{path}", timeout=5) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.load(refused)
    except (urllib.error.URLError, OSError):
        return 0, None


def unavailable(reason: str) -> tuple[int, Any]:
    return 503, {"status": "unavailable", "reason": reason}


def decode_status(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{server.api}/api/v1/status", timeout=10) as reply:
        decode: dict[str, Any] = json.load(reply)["decode"]
        return decode


def both_answer(server: ServerProcess, expected: tuple[int, Any]) -> bool:
    return health(server, "/readyz") == expected and health(server, "/healthz") == expected


def test_health_is_503_with_the_reason_while_no_worker_can_decode(
        start_server: StartServer, tmp_path: Path) -> None:
    hold = tmp_path / "hold-workers"
    hold.touch()  # the first worker is slow to start
    server = start_server("--decode-workers", "1", env=hooked(f"hold:{hold}"), wait=False)
    starting = unavailable("the decode workers are starting")
    wait_until(lambda: both_answer(server, starting),
               message="/readyz to say the workers are starting")
    assert "INFO otel_hms: ready:" not in server.log.read_text()
    hold.unlink()
    wait_until(lambda: both_answer(server, OK), message="/readyz to answer ok")
    assert "INFO otel_hms: ready:" in server.log.read_text()

    first = decode_status(server)["pids"][0]
    hold.touch()  # its replacement will be slow to start
    os.kill(first, signal.SIGKILL)
    down = unavailable(f"no decode worker is running: decode worker {first} was killed by "
                       "SIGKILL; starting another")
    wait_until(lambda: both_answer(server, down), message="/readyz to say the worker died")
    decode = decode_status(server)
    assert decode["ready"] == 0 and decode["pids"] != [first] and decode["restarts"] == 1
    hold.unlink()
    wait_until(lambda: both_answer(server, OK), message="/readyz to answer ok again")
    assert (f"WARNING otel_hms.receiver: decode worker {first} was killed by SIGKILL; "
            "starting another\n") in server.log.read_text()

    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=server.grpc, insecure=True),
        export_interval_millis=float("inf"))])
    provider.get_meter("health").create_counter("after_restart_total").add(7)
    assert provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    assert server.scalar("SELECT Value FROM otel_metrics_sum "
                         "WHERE MetricName = 'after_restart_total'") == 7.0


ERROR_LINE = re.compile(
    r"Error: decode workers keep dying \(5 times within 60 s\); the last: decode worker "
    r"(?P<pid>\d+) exited with status 1 before it was ready: (?P<stderr>.*)")


def assert_stopped_for_dying_workers(server: ServerProcess) -> str:
    """``serve`` exited 1 with one ``Error:`` line, after an ERROR with the worker's stderr;
    returns the log."""
    assert server.proc.wait(60) == 1
    log = server.log.read_text()
    last = log.rstrip("\n").splitlines()[-1]
    error = ERROR_LINE.fullmatch(last)
    assert error is not None, log
    assert error["stderr"] == WORKER_MISSING
    assert [line for line in log.splitlines() if line.startswith("Error:")] == [last]
    assert (f"ERROR otel_hms.receiver: decode workers keep dying (5 times within 60 s); the "
            f"last: decode worker {error['pid']} exited with status 1 before it was ready; "
            f"its stderr:\n    {WORKER_MISSING}\n") in log
    assert "stopped; store closed cleanly" in log
    return log


def test_serve_stops_when_its_workers_cannot_start(start_server: StartServer,
                                                   tmp_path: Path) -> None:
    hide = tmp_path / "hide-package"
    hide.touch()
    server = start_server("--decode-workers", "1", env=hooked(f"hide:{hide}"), wait=False)
    log = assert_stopped_for_dying_workers(server)
    assert "INFO otel_hms: ready:" not in log
    assert log.count("before it was ready; starting another") == 4


def test_serve_stops_when_its_worker_keeps_dying(start_server: StartServer,
                                                 tmp_path: Path) -> None:
    hide = tmp_path / "hide-package"
    server = start_server("--decode-workers", "1", env=hooked(f"hide:{hide}"))
    first = decode_status(server)["pids"][0]
    hide.touch()  # from now on workers cannot import their package
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: server.proc.poll() is not None or health(server, "/readyz")[0] == 503,
               message="/readyz to answer 503")
    log = assert_stopped_for_dying_workers(server)
    assert f"decode worker {first} was killed by SIGKILL; starting another\n" in log
    assert log.count("before it was ready; starting another") == 3


def test_health_needs_no_token(start_server: StartServer) -> None:
    server = start_server("--auth-token", "s3cret")
    assert both_answer(server, OK)
    with pytest.raises(urllib.error.HTTPError) as refused:
        decode_status(server)
    refused.value.close()
    assert refused.value.code == 401
