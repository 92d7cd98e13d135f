"""Every SQL answer is bounded: in bytes (``sql_max_answer_bytes``, 413), in DuckDB's memory
(``memory_limit``, 413), in time over the whole request (``sql_timeout_seconds``, encoding
included), and its work stops when the client goes away.  The attacks are issue 12's: each
asserts the status and message, that the server's memory stayed bounded and that it still
answers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from conftest import ServerProcess, StartServer, wait_until

MiB = 1024 * 1024
TOO_LARGE = ("the answer is larger than sql_max_answer_bytes ({} bytes of JSON); select fewer "
             "rows or columns, aggregate in SQL, or raise the setting")
OUT_OF_MEMORY = ("the query needs more memory than the store's memory_limit allows (DuckDB: Out "
                 "of Memory Error: failed to allocate data of size ")
MEMORY_FIX = "); filter or aggregate more in SQL, or raise the memory_limit setting"


def post_sql(server: ServerProcess, sql: str, timeout: float = 120) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://{server.api}/api/v1/sql", data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def error_of(server: ServerProcess, sql: str) -> tuple[int, str]:
    status, body = post_sql(server, sql)
    return status, json.loads(body)["error"]


def peak_rss_mib(server: ServerProcess) -> int:
    """The server process's peak resident memory so far (VmHWM)."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


def sql_stats(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{server.api}/api/v1/status", timeout=10) as reply:
        stats: dict[str, Any] = json.load(reply)["sql"]
        return stats


def test_the_issues_huge_answers_are_refused_and_memory_stays_bounded(
        start_server: StartServer) -> None:
    server = start_server("--memory-limit", "1GB", "--decode-workers", "0")
    assert server.scalar("SELECT current_setting('memory_limit')") == "953.6 MiB"
    before = peak_rss_mib(server)

    status, message = error_of(server, "SELECT repeat('x', 500000000)")
    assert (status, message) == (413, TOO_LARGE.format(64 * MiB))
    status, message = error_of(server, "SELECT string_agg(range::VARCHAR, ',') "
                                       "FROM range(100000000)")
    assert status == 413
    assert message.startswith(OUT_OF_MEMORY) and message.endswith(MEMORY_FIX), message
    status, message = error_of(server, "SELECT list(range) FROM range(50000000)")
    assert status == 413
    assert message.startswith(OUT_OF_MEMORY) and message.endswith(MEMORY_FIX), message

    # Unbounded, the list alone took the server to 5.6 GB. DuckDB builds repeat()'s 500 MB
    # string outside its buffer manager (twice over): that, not the answer, is the peak now.
    assert before < 400
    assert peak_rss_mib(server) < 2_400
    assert server.scalar("SELECT 42") == 42
    assert sql_stats(server) == {"running": 0, "answered": 2, "refused": 0, "too_large": 3,
                                 "timed_out": 0, "cancelled": 0}


def test_answer_bytes_limit_is_exact_and_named(start_server: StartServer) -> None:
    server = start_server("--sql-max-answer-bytes", "10000", "--decode-workers", "0")
    status, body = post_sql(server, "SELECT range AS n FROM range(1500)")
    assert status == 200
    assert len(body) == 9_453
    assert json.loads(body)["rows"][-1] == [1499]
    assert error_of(server, "SELECT range AS n FROM range(2000)") == (
        413, TOO_LARGE.format(10_000))
    # One huge value is stopped inside DuckDB, before it becomes a Python object.
    assert error_of(server, "SELECT repeat('x', 30000) AS s") == (413, TOO_LARGE.format(10_000))
    result = subprocess.run([sys.executable, "-m", "otel_hms", "sql", "--api", server.api,
                             "SELECT * FROM range(5000)"], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr) == (
        1, f"Error: query refused: {TOO_LARGE.format(10_000)}\n")


def test_the_time_limit_covers_encoding_the_answer(start_server: StartServer) -> None:
    """DuckDB streams these rows at once; turning 5 M of them into JSON takes far longer than
    the one second allowed, and the answer is refused at the second."""
    server = start_server("--sql-timeout-seconds", "1", "--sql-row-limit", "10000000",
                          "--sql-max-answer-bytes", str(2**31 - 1), "--decode-workers", "0")
    started = time.monotonic()
    status, message = error_of(server, "SELECT range AS n, map {'k': range::VARCHAR} AS m "
                                       "FROM range(5000000)")
    elapsed = time.monotonic() - started
    assert (status, message) == (400, "query exceeded the time limit of 1 s (setting "
                                      "sql_timeout_seconds)")
    assert elapsed < 3.0
    assert sql_stats(server)["timed_out"] == 1


def test_a_disconnected_client_stops_its_query(start_server: StartServer) -> None:
    server = start_server("--sql-timeout-seconds", "600", "--decode-workers", "0")
    body = json.dumps({"sql": "SELECT sum(a.range * b.range) "
                              "FROM range(1000000) a, range(1000000) b"})
    client = socket.create_connection(("127.0.0.1", server.api_port), timeout=10)
    client.sendall(f"POST /api/v1/sql HTTP/1.1\r\nHost: {server.api}\r\nContent-Type: "
                   f"application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
    wait_until(lambda: sql_stats(server)["running"] == 1, message="the query to run")
    time.sleep(0.5)  # let DuckDB get into the join: the cancel must stop real work
    assert sql_stats(server)["running"] == 1
    started = time.monotonic()
    client.close()
    wait_until(lambda: sql_stats(server)["running"] == 0, timeout=10,
               message="the query to stop after its client left")
    assert time.monotonic() - started < 10
    assert sql_stats(server) == {"running": 0, "answered": 0, "refused": 0, "too_large": 0,
                                 "timed_out": 0, "cancelled": 1}
    assert server.scalar("SELECT 42") == 42
    server.stop()
    assert "SQL endpoint: query cancelled: the client disconnected" in server.log.read_text()


def test_memory_limit_setting_is_checked(start_server: StartServer) -> None:
    server = start_server("--memory-limit", "lots", wait=False)
    assert server.proc.wait(60) == 1
    assert server.log.read_text() == (
        "Error: --memory-limit: Memory must have a number (e.g. 1GB) (got 'lots'); use e.g. "
        "2GB, 512MiB or 50%\n")
