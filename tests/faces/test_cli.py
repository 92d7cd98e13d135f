"""The `otel-hms` command as a user types it: serve, sql and the errors they print."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc

from conftest import ServerProcess, StartServer, free_port
from otlp_requests import gauge_request

T0 = 1_700_000_000_000_000_000


def otel_hms(*args: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_hms", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_serve_help_lists_every_setting() -> None:
    result = otel_hms("serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "unset: DuckDB's default, 80% of RAM" in " ".join(result.stdout.split())


def send_gauge(server: ServerProcess) -> None:
    channel = grpc.insecure_channel(server.grpc)
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
    stub.Export(gauge_request("active_connections", [
        ({"route": "/apply"}, T0, 12.0),
        ({"route": "/pay, \"card\""}, T0, 3.5),
    ]), timeout=10)
    channel.close()


QUERY = ("SELECT Attributes['route'] AS route, Value AS value FROM otel_metrics_gauge "
         "ORDER BY route")


def test_sql_formats(server: ServerProcess) -> None:
    send_gauge(server)
    as_json = otel_hms("sql", "--api", server.api, "--format", "json", QUERY)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [{"route": "/apply", "value": 12.0},
                                          {"route": "/pay, \"card\"", "value": 3.5}]
    as_csv = otel_hms("sql", "--api", server.api, "--format", "csv", QUERY)
    assert as_csv.stdout.splitlines() == ["route,value", "/apply,12.0", '"/pay, ""card""",3.5']
    table = otel_hms("sql", "--api", server.api, QUERY)
    lines = table.stdout.splitlines()
    assert lines[1] == "| route        | value |"
    assert lines[3] == "| /apply       | 12.0  |"
    assert lines[-1] == "2 rows"


def test_sql_api_from_environment(server: ServerProcess) -> None:
    send_gauge(server)
    result = otel_hms("sql", "--format", "json", "SELECT count(*) AS n FROM otel_metrics_gauge",
                      env={"OTEL_HMS_API": server.api})
    assert json.loads(result.stdout) == [{"n": 2}]


def test_sql_refuses_writes_with_one_line(server: ServerProcess) -> None:
    result = otel_hms("sql", "--api", server.api, "DELETE FROM series")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: query refused: only read-only SELECT")
    assert len(result.stderr.strip().splitlines()) == 1


def test_sql_without_server_says_so() -> None:
    port = free_port()
    result = otel_hms("sql", "--api", f"127.0.0.1:{port}", "SELECT 1")
    assert result.returncode == 1
    assert f"Error: --api: no otel-hms server answers at 127.0.0.1:{port}" in result.stderr


def test_second_serve_on_locked_file_names_the_holder(start_server: StartServer) -> None:
    first = start_server()
    second = otel_hms("serve", "--db", str(first.db), "--otlp-grpc", f"127.0.0.1:{free_port()}",
                      "--otlp-http", f"127.0.0.1:{free_port()}", "--api",
                      f"127.0.0.1:{free_port()}")
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"Error: --db: {first.db} is locked by another otel-hms serve (pid {first.proc.pid}); "
        "stop it or use `otel-hms sql` to query it")
    assert first.ready()


HOLDER = """\
import sys
import duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def test_a_file_another_program_holds_is_named_as_typed(tmp_path: Path) -> None:
    (tmp_path / "holder.py").write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, "holder.py", "x.duckdb"], cwd=tmp_path,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        second = otel_hms("serve", "--db", str(tmp_path / "x.duckdb"),
                          "--otlp-grpc", f"127.0.0.1:{free_port()}",
                          "--otlp-http", f"127.0.0.1:{free_port()}",
                          "--api", f"127.0.0.1:{free_port()}")
    finally:
        holder.communicate("", timeout=30)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"Error: --db: {tmp_path / 'x.duckdb'} is locked by another process (pid "
        f"{holder.pid}, `{os.path.basename(sys.executable)} holder.py x.duckdb`); stop it or "
        "pick another --db")


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = otel_hms("serve", "--db", str(tmp_path / "x.duckdb"),
                          "--otlp-grpc", f"127.0.0.1:{free_port()}",
                          "--otlp-http", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"Error: --otlp-http: cannot listen on 127.0.0.1:"
                                            f"{port}")


def test_config_file_env_and_flags_in_that_order(start_server: StartServer,
                                                 tmp_path: Path) -> None:
    config = tmp_path / "otel-hms.yaml"
    config.write_text("sql_row_limit: 1\nsql_timeout_seconds: ${SQL_TIMEOUT:-12}\n"
                      "max-attributes-per-point: 5\n")
    server = start_server("--config", str(config), env={"OTEL_HMS_SQL_ROW_LIMIT": "2"})
    result = server.sql_result("SELECT * FROM range(10)")
    assert len(result["rows"]) == 2 and result["truncated"] is True
    flagged = start_server("--config", str(config), "--sql-row-limit", "3",
                           db=tmp_path / "other.duckdb",
                           env={"OTEL_HMS_SQL_ROW_LIMIT": "2"})
    assert len(flagged.sql_result("SELECT * FROM range(10)")["rows"]) == 3


def test_bad_settings_name_the_field(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("max_request_bytes: lots\n")
    result = otel_hms("serve", "--config", str(bad_yaml))
    assert result.stderr.strip() == f"Error: {bad_yaml}: max_request_bytes: must be a int " \
                                    "(got 'lots')"
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("retention: 30d\n")
    result = otel_hms("serve", "--config", str(unknown))
    assert result.stderr.startswith(f"Error: {unknown}: unknown setting 'retention'")
    result = otel_hms("serve", "--otlp-grpc", "localhost")
    assert result.stderr.strip() == ("Error: --otlp-grpc: expected HOST:PORT with a port "
                                     "0-65535 (got 'localhost')")
    result = otel_hms("serve", "--tls-cert", "/nonexistent.pem")
    assert result.stderr.strip() == "Error: --tls-cert and --tls-key: give both or neither"
    result = otel_hms("serve", "--db", str(tmp_path / "missing" / "x.duckdb"))
    assert result.stderr.strip().startswith("Error: --db: directory")
    assert result.returncode == 1


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("hello\n")
    result = otel_hms("serve", "--db", str(path), "--otlp-grpc", "127.0.0.1:0",
                      "--otlp-http", "127.0.0.1:0", "--api", "127.0.0.1:0")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: --db: cannot open {path}: ")
    assert "not a valid DuckDB database file" in result.stderr
    assert path.read_text() == "hello\n"
