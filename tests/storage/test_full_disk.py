"""A full disk under a real ``otel-hms serve``: the store on a small tmpfs that the test fills.

While the disk refuses writes, exports get 503 (senders retry) and /healthz, /readyz say why;
once space is freed the store takes writes again by itself (reopening the database when
DuckDB invalidated it); every acknowledged point is stored exactly once, and a shutdown on a
full disk is one warning line and exit 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerProcess, StartServer, wait_until
from otlp_requests import gauge_request

T0 = 1_700_000_000_000_000_000
DISK_MB = 64
CHECKPOINT_THRESHOLD = 16 * 1024 * 1024  # DuckDB's default checkpoint_threshold (16 MiB)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh tmpfs of DISK_MB MiB, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs",
                           str(mount_point)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("a full disk is tested on a small tmpfs, and this machine cannot mount "
                    f"one (`mount -t tmpfs` says: {done.stderr.strip()}); run as root with "
                    "CAP_SYS_ADMIN")
    yield mount_point
    if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.fixture
def start(disk: Path, start_server: StartServer) -> StartServer:
    """``start_server`` with the store on the small disk (servers stop before it unmounts)."""
    def start_on_disk(*args: str) -> ServerProcess:
        return start_server("--rollup-interval-seconds", "3600", *args,
                            db=disk / "store.duckdb")
    return start_on_disk


def fill(disk: Path) -> Path:
    """Write a file until the disk is full (to its last block)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (bytes(1024 * 1024), bytes(4096)):
            try:
                while os.write(fd, chunk):
                    pass
            except OSError as exc:
                assert exc.strerror == "No space left on device"
    finally:
        os.close(fd)
    return filler


def batch_body(batch: int, points: int = 2000) -> bytes:
    return gauge_request("disk.probe", [({"batch": str(batch), "i": str(i)}, T0 + batch,
                                         float(i)) for i in range(points)]).SerializeToString()


def post(server: ServerProcess, body: bytes) -> tuple[int, str | None, str]:
    """OTLP/HTTP export: status, Retry-After, and the google.rpc.Status message if refused."""
    request = urllib.request.Request(server.http_url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, None, ""
    except urllib.error.HTTPError as exc:
        from google.rpc import status_pb2

        message = status_pb2.Status.FromString(exc.read()).message
        return exc.code, exc.headers.get("Retry-After"), message


def get(server: ServerProcess, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{server.api_url}{path}", timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def sql(server: ServerProcess, query: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.api_url}/api/v1/sql", method="POST",
                                     data=json.dumps({"sql": query}).encode())
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def stored_batches(server: ServerProcess) -> dict[int, int]:
    rows = server.sql("SELECT Attributes['batch'] AS b, count(*) AS n FROM otel_metrics_gauge "
                      "WHERE MetricName = 'disk.probe' GROUP BY ALL")
    return {int(r["b"]): r["n"] for r in rows}


def resend_until_stored(server: ServerProcess, batches: list[int]) -> None:
    """What a sender does with exports refused by 503: retry them."""
    for batch in batches:
        wait_until(lambda b=batch: post(server, batch_body(b))[0] == 200, timeout=30,
                   message=f"batch {batch} to be stored")


def unavailable(server: ServerProcess) -> str | None:
    """The reason /healthz and /readyz give, which must be the same; None while healthy."""
    (health, body), (ready, again) = get(server, "/healthz"), get(server, "/readyz")
    assert (health, body) == (ready, again)
    if health == 200:
        assert body == {"status": "ok"}
        return None
    assert health == 503 and body["status"] == "unavailable"
    return str(body["reason"])


def refused_while_full(server: ServerProcess, first: int, count: int, reason: str) -> None:
    """Exports while the disk is full: each one 503 with Retry-After and the reason."""
    for batch in range(first, first + count):
        status, retry_after, message = post(server, batch_body(batch))
        assert (status, retry_after) == (503, "1"), message
        assert reason in message


def test_full_log_append_refuses_exports_then_recovers_and_shutdown_is_one_line(
        disk: Path, start: StartServer) -> None:
    server = start()
    db = disk / "store.duckdb"
    for batch in range(5):
        assert post(server, batch_body(batch))[0] == 200
    filler = fill(disk)

    status, _, message = post(server, batch_body(5))
    assert status == 503
    reason = (f"the store's disk failed a write (Could not write file \"{db}.wal\": No space "
              "left on device); exports are refused until it takes writes again (free space "
              "on it)")
    assert message == f"store could not commit the batch ({reason}); retry"
    assert unavailable(server) == reason
    refused_while_full(server, 6, 3, reason)
    # Reads still work: the database is whole, only its log could not grow.
    assert sql(server, "SELECT count(*) FROM otel_metrics_gauge") == (
        200, {"columns": ["count_star()"], "types": ["BIGINT"], "rows": [[5 * 2000]],
              "truncated": False})
    status_code, status = get(server, "/api/v1/status")
    assert status_code == 200
    assert status["store"] == {"unavailable": reason, "reopens": 0}
    assert (status["writer"]["disk_failures"], status["writer"]["rejected_unavailable"]) == (1, 3)

    filler.unlink()
    wait_until(lambda: unavailable(server) is None, timeout=20,
               message="the server to take exports again")
    resend_until_stored(server, [5, 6, 7, 8])
    for batch in range(9, 12):
        assert post(server, batch_body(batch))[0] == 200
    assert stored_batches(server) == {b: 2000 for b in range(12)}
    assert get(server, "/api/v1/status")[1]["store"] == {"unavailable": None, "reopens": 0}

    # A shutdown on a full disk cannot checkpoint: one warning, exit 0, nothing lost.
    filler = fill(disk)
    assert server.stop() == 0
    log = server.log.read_text()
    assert "Traceback" not in log
    last = log.splitlines()[-1]
    assert last.endswith(f"WARNING otel_hms: stopped; the store could not be checkpointed "
                         f"(Could not write file \"{db}\": No space left on device): every "
                         f"committed point is in its write-ahead log {db}.wal, which the next "
                         "start replays (free space on its disk first)"), last
    filler.unlink()
    restarted = start()
    assert stored_batches(restarted) == {b: 2000 for b in range(12)}


def _log_size(db: Path) -> int:
    wal = Path(f"{db}.wal")
    return wal.stat().st_size if wal.exists() else 0


def test_failed_checkpoint_invalidates_the_store_and_it_reopens_itself(
        disk: Path, start: StartServer) -> None:
    server = start()
    db = disk / "store.duckdb"
    # Grow the write-ahead log to just under the checkpoint threshold, so that the next
    # commit checkpoints, while the disk still has room.
    batch, growth = 0, 0
    while _log_size(db) + 3 * growth < CHECKPOINT_THRESHOLD:
        before = _log_size(db)
        assert post(server, batch_body(batch))[0] == 200
        batch += 1
        growth = max(growth, _log_size(db) - before)
    acknowledged = batch
    print("BATCHES", batch, growth, _log_size(db))
    filler = fill(disk)

    big = 12_000  # a commit whose log entry passes the threshold: DuckDB checkpoints instead
    status, _, message = post(server, batch_body(acknowledged, big))
    assert status == 503, message
    reason = (f"the store's disk failed a write (Could not write file \"{db}\": No space left "
              "on device) and DuckDB closed the database; it is reopened once the disk takes "
              "writes again (free space on it), and nothing committed is lost")
    assert message == f"store could not commit the batch ({reason}); retry"
    assert unavailable(server) == reason
    refused_while_full(server, acknowledged + 1, 2, reason)
    # Every read fails on an invalidated database: the API says so with 503, not FATAL.
    assert sql(server, "SELECT count(*) FROM otel_metrics_gauge") == (503, {"error": reason})
    assert get(server, "/api/v1/metrics") == (503, {"error": reason})

    filler.unlink()
    wait_until(lambda: unavailable(server) is None, timeout=30,
               message="the store to be reopened")
    assert get(server, "/api/v1/status")[1]["store"] == {"unavailable": None, "reopens": 1}
    assert stored_batches(server) == {b: 2000 for b in range(acknowledged)}
    wait_until(lambda: post(server, batch_body(acknowledged, big))[0] == 200, timeout=30,
               message="the big batch to be stored")
    resend_until_stored(server, [acknowledged + 1, acknowledged + 2])
    expected = {b: 2000 for b in range(acknowledged)} | {
        acknowledged: big, acknowledged + 1: 2000, acknowledged + 2: 2000}
    assert stored_batches(server) == expected
    assert server.stop() == 0
    assert server.log.read_text().splitlines()[-1].endswith(
        "INFO otel_hms: stopped; store closed cleanly")
    assert stored_batches(start()) == expected
