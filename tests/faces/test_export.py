"""``otel-hms export``: points sent over OTLP to a real server come back, exactly, from Parquet
read by a separate DuckDB, through the server and offline, re-exported without duplicates,
while readers scan the directory; bad input is one line that says the fix."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_hms.query.read_only import jsonable

from conftest import ServerProcess, StartServer, free_port, wait_until
from metric_builders import (
    DELTA,
    T0_S,
    at,
    attributes,
    exp_metric,
    exp_point,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    sum_metric,
)

T0 = dt.datetime.fromtimestamp(T0_S, dt.UTC)  # 2026-01-01T00:00:00Z
SINCE, UNTIL = "2025-12-31T23:00:00Z", "2026-01-01T02:00:00Z"
ROOM_A, ROOM_B = {"room": "a"}, {"room": "b"}
ROUTE = {"http.route": "/permits"}


def t(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def summary_metric(name: str, when: float) -> metrics_pb2.Metric:
    point = metrics_pb2.SummaryDataPoint(
        attributes=attributes(ROUTE), time_unix_nano=at(when), start_time_unix_nano=at(-60),
        count=4, sum=10.0, quantile_values=[
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0),
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=4.0)])
    return metrics_pb2.Metric(name=name, summary=metrics_pb2.Summary(data_points=[point]))


def every_kind() -> ExportMetricsServiceRequest:
    """One request with points of every kind, on both sides of midnight and in two hours."""
    with_min_max = histogram_point(ROUTE, 25, [0.1, 1.0], [0, 1, 1])
    with_min_max.min, with_min_max.max, with_min_max.sum = 0.2, 3.5, 3.7
    return request(
        gauge_metric("room.temperature", [
            number_point(ROOM_A, -1800, 19.5), number_point(ROOM_A, 10, 20.25),
            number_point(ROOM_B, 10, 18.0), number_point(ROOM_A, 3700, 21.0)]),
        sum_metric("permits.issued", [number_point(ROUTE, 5, 7, start=-60),
                                      number_point(ROUTE, 15, 9, start=-60)]),
        sum_metric("queue.changes", [number_point(ROUTE, 15, -2, start=5)], DELTA,
                   monotonic=False),
        histogram_metric("http.server.request.duration", [
            histogram_point(ROUTE, 20, [0.1, 1.0], [1, 2, 0]), with_min_max]),
        exp_metric("payload.size", [exp_point(ROUTE, 30, 2, 3, [1, 0, 4], zero_count=1)]),
        summary_metric("rpc.duration", 40),
        service="permits", resource={"host.name": "node-1"})


def stored_points(server: ServerProcess) -> int:
    return int(server.scalar(
        "SELECT (SELECT count(*) FROM points_gauge) + (SELECT count(*) FROM points_sum) + "
        "(SELECT count(*) FROM points_histogram) + (SELECT count(*) FROM points_exp_histogram)"
        " + (SELECT count(*) FROM points_summary)"))


def send(server: ServerProcess, req: ExportMetricsServiceRequest) -> None:
    """Post and wait until the writer has committed the points."""
    before = stored_points(server)
    server.export(req)
    points = sum(len(getattr(m, m.WhichOneof("data")).data_points)
                 for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    wait_until(lambda: stored_points(server) == before + points, message="points committed")


def export(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_hms", "export", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def exported(server: ServerProcess, to: Path, *extra: str) -> str:
    done = export("--api", server.api, "--to", str(to), "--since", SINCE, "--until", UNTIL,
                  *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout


def read(to: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` over ``ds`` (the dataset), on a DuckDB of its own."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW ds AS SELECT * FROM read_parquet('{to}/**/*.parquet', "
                    "hive_partitioning = true, union_by_name = true)")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def files(to: Path) -> list[str]:
    return sorted(str(p.relative_to(to)) for p in to.rglob("*") if p.is_file())


@pytest.fixture
def loaded(server: ServerProcess) -> ServerProcess:
    send(server, every_kind())
    return server


def test_every_kind_through_the_running_server(loaded: ServerProcess, tmp_path: Path) -> None:
    to = tmp_path / "exports" / "out"
    out = exported(loaded, to)
    assert out.splitlines() == [
        "gauge: 4 rows into 3 files", "sum: 3 rows into 1 file", "histogram: 2 rows into 1 file",
        "exp_histogram: 1 row into 1 file", "summary: 1 row into 1 file",
        f"Exported 11 rows into 7 files under {to} "
        "(2025-12-31T23:00:00+00:00 to 2026-01-01T02:00:00+00:00)"]
    assert files(to) == [
        "kind=exp_histogram/date=2026-01-01/hour-00.parquet",
        "kind=gauge/date=2025-12-31/hour-23.parquet",
        "kind=gauge/date=2026-01-01/hour-00.parquet",
        "kind=gauge/date=2026-01-01/hour-01.parquet",
        "kind=histogram/date=2026-01-01/hour-00.parquet",
        "kind=sum/date=2026-01-01/hour-00.parquet",
        "kind=summary/date=2026-01-01/hour-00.parquet",
    ]
    # The README's form: one kind, its hive columns kind and date.
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    assert con.execute(
        f"SELECT date, Attributes['room'], ResourceAttributes['host.name'], ServiceName, "
        f"TimeUnix, Value FROM read_parquet('{to}/kind=gauge/**/*.parquet', "
        "hive_partitioning=true) WHERE kind = 'gauge' AND MetricName = 'room.temperature' "
        "ORDER BY TimeUnix, Value"
    ).fetchall() == [
        (dt.date(2025, 12, 31), "a", "node-1", "permits", t(-1800), 19.5),
        (dt.date(2026, 1, 1), "b", "node-1", "permits", t(10), 18.0),
        (dt.date(2026, 1, 1), "a", "node-1", "permits", t(10), 20.25),
        (dt.date(2026, 1, 1), "a", "node-1", "permits", t(3700), 21.0),
    ]
    con.close()
    assert read(to, "SELECT MetricName, TimeUnix, StartTimeUnix, Value, ValueInt, "
                "AggregationTemporality, IsMonotonic FROM ds WHERE kind = 'sum' "
                "ORDER BY MetricName, TimeUnix") == [
        ("permits.issued", t(5), t(-60), 7.0, 7, 2, True),
        ("permits.issued", t(15), t(-60), 9.0, 9, 2, True),
        ("queue.changes", t(15), t(5), -2.0, -2, 1, False),
    ]
    assert read(to, "SELECT TimeUnix, Count, Sum, Min, Max, BucketCounts, ExplicitBounds, "
                "Attributes['http.route'] FROM ds WHERE kind = 'histogram' ORDER BY TimeUnix"
                ) == [
        (t(20), 3, None, None, None, [1, 2, 0], [0.1, 1.0], "/permits"),
        (t(25), 2, 3.7, 0.2, 3.5, [0, 1, 1], [0.1, 1.0], "/permits"),
    ]
    assert read(to, "SELECT Count, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, "
                "NegativeBucketCounts, Min FROM ds WHERE kind = 'exp_histogram'") == [
        (6, 2, 1, 3, [1, 0, 4], [], None)]
    assert read(to, "SELECT Count, Sum, ValueAtQuantiles, TimeUnixNano FROM ds "
                "WHERE kind = 'summary'") == [
        (4, 10.0, [{"Quantile": 0.5, "Value": 2.0}, {"Quantile": 0.99, "Value": 4.0}],
         at(40))]
    assert read(to, "SELECT AttributesTyped->>'$.\"http.route\".stringValue', "
                "typeof(AttributesTyped) FROM ds WHERE kind = 'summary'") == [
        ("/permits", "JSON")]


def test_columns_and_rows_are_the_views(loaded: ServerProcess, tmp_path: Path) -> None:
    to = tmp_path / "exports" / "out"
    exported(loaded, to)
    for kind in ("gauge", "sum", "histogram", "exp_histogram", "summary"):
        # Every column but the Nested fields ("Exemplars.TraceId"), which repeat the lists.
        view = loaded.sql_result("SELECT COLUMNS(lambda c: NOT contains(c, '.')) "
                                 f"FROM otel_metrics_{kind} ORDER BY ALL")
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        rel = con.sql(f"SELECT * EXCLUDE (kind, date) FROM read_parquet("
                      f"'{to}/kind={kind}/*/*.parquet', hive_partitioning=true) ORDER BY ALL")
        assert rel.columns == view["columns"], kind
        rows = [[jsonable(v) for v in row] for row in rel.fetchall()]
        con.close()
        # JSON columns come back as JSON text from the server and parsed here: compare text.
        assert len(rows) == len(view["rows"]) > 0, kind
        for got, want in zip(rows, view["rows"]):
            for name, g, w in zip(view["columns"], got, want):
                if name.endswith("Typed"):
                    continue
                assert g == w, (kind, name)


def test_reexport_replaces_instead_of_duplicating(loaded: ServerProcess, tmp_path: Path) -> None:
    to = tmp_path / "exports" / "out"
    exported(loaded, to)
    (to / ".export-0123.tmp").write_bytes(b"left by an export that was killed")
    exported(loaded, to)
    count = "SELECT kind, count(*) FROM ds GROUP BY kind ORDER BY kind"
    assert read(to, count) == [("exp_histogram", 1), ("gauge", 4), ("histogram", 2),
                               ("sum", 3), ("summary", 1)]
    # A new point in an exported hour, then a narrow export over it: the hour's file gets
    # the new point and keeps the rows outside the narrow range.
    send(loaded, request(gauge_metric("room.temperature", [number_point(ROOM_B, 50, 18.5)]),
                         service="permits", resource={"host.name": "node-1"}))
    done = export("--api", loaded.api, "--to", str(to), "--since", "2026-01-01T00:00:45Z",
                  "--until", "2026-01-01T00:00:55Z", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == [
        {"kind": "gauge", "date": "2026-01-01", "rows": 1, "kept": 2,
         "path": "kind=gauge/date=2026-01-01/hour-00.parquet"}]
    assert read(to, "SELECT Attributes['room'], TimeUnix, Value FROM ds WHERE kind = 'gauge' "
                "AND date = '2026-01-01' ORDER BY ALL") == [
        ("a", t(10), 20.25), ("a", t(3700), 21.0), ("b", t(10), 18.0), ("b", t(50), 18.5)]
    # One metric re-exported over the whole range leaves the other metrics of its files.
    out = exported(loaded, to, "--metric", "permits.issued", "--kind", "sum")
    assert out.splitlines()[0] == "sum: 2 rows into 1 file, 1 row of earlier exports kept"
    assert read(to, count) == [("exp_histogram", 1), ("gauge", 5), ("histogram", 2),
                               ("sum", 3), ("summary", 1)]
    assert not [f for f in files(to) if not f.endswith(".parquet")]


def test_readers_never_see_half_a_file(loaded: ServerProcess, tmp_path: Path) -> None:
    """A reader scanning the directory during repeated exports always sees every row once."""
    to = tmp_path / "exports" / "out"
    exported(loaded, to)
    stop = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def scan() -> None:
        while not stop.is_set():
            try:
                seen.append(read(to, "SELECT count(*) FROM ds")[0][0])
            except BaseException as exc:  # noqa: B036 - reported by the test below
                failures.append(exc)
                return

    def ingest() -> None:  # points after the exported range keep the writer busy
        for i in range(40):
            loaded.export(request(gauge_metric("room.temperature", [
                number_point(ROOM_A, 7200 + i * 60 + j, float(j)) for j in range(50)])))
            if stop.is_set():
                return

    threads = [threading.Thread(target=scan), threading.Thread(target=ingest)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(4):
            exported(loaded, to, "--kind", "exponential_histogram,gauge,histogram,sum,summary")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not failures, failures
    assert len(seen) > 0 and set(seen) == {11}
    assert len(files(to)) == 7


def test_offline_store_file(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server()
    send(server, every_kind())
    held = export("--db", str(server.db), "--to", str(tmp_path / "x"), "--since", SINCE,
                  "--until", UNTIL)
    assert held.returncode == 1
    assert held.stderr.startswith(f"Error: --db: {server.db} is held by a running otel-hms "
                                  f"serve (pid {server.proc.pid}); ")
    assert held.stderr.rstrip().endswith("leave out --db to export through its API "
                                         "(--api HOST:PORT)")
    assert not (tmp_path / "x").exists()
    assert server.stop() == 0
    to = tmp_path / "offline"
    done = export("--db", str(server.db), "--to", str(to), "--since", SINCE, "--until", UNTIL,
                  "--kind", "gauge", "--kind", "histogram")
    assert done.returncode == 0, done.stderr
    assert read(to, "SELECT kind, date, count(*), min(TimeUnix) FROM ds GROUP BY ALL "
                "ORDER BY ALL") == [
        ("gauge", dt.date(2025, 12, 31), 1, t(-1800)),
        ("gauge", dt.date(2026, 1, 1), 3, t(10)),
        ("histogram", dt.date(2026, 1, 1), 2, t(20)),
    ]


def test_durations_back_from_now(server: ServerProcess, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    recent = (now - dt.timedelta(minutes=10)).timestamp() - T0_S
    send(server, request(gauge_metric("g", [number_point(ROOM_A, -3600 * 24 * 30, 1.0),
                                            number_point(ROOM_A, recent, 2.0)])))
    to = tmp_path / "exports" / "out"
    done = export("--api", server.api, "--to", str(to), "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert read(to, "SELECT Value, date FROM ds") == [(2.0, (now - dt.timedelta(minutes=10))
                                                      .date())]


def error_of(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(server: ServerProcess, tmp_path: Path) -> None:
    to = tmp_path / "exports" / "out"
    assert error_of(export("--api", server.api)) == (
        "Error: --to: give the directory to write the Parquet files into, e.g. --to ./parquet")
    api = ("--api", server.api, "--to", str(to))
    assert error_of(export(*api, "--kind", "gauge,counter")) == (
        "Error: --kind: unknown kind 'counter'; use gauge, sum, histogram, exp_histogram or "
        "summary")
    assert error_of(export(*api, "--since", "2026-01-02T00:00:00Z",
                           "--until", "2026-01-01T00:00:00Z")) == (
        "Error: --since (2026-01-02T00:00:00+00:00) must be before --until "
        "(2026-01-01T00:00:00+00:00); swap them or widen the range")
    assert error_of(export(*api, "--since", "yesterday")) == (
        "Error: --since: 'yesterday' is not a time; use a duration back from now (24h, 7d), "
        "RFC 3339 (2026-12-01T00:00:00Z) or unix seconds")
    assert not to.exists()
    empty = export(*api, "--since", "2020-01-01T00:00:00Z", "--until", "2020-01-02T00:00:00Z",
                   "--kind", "gauge,sum")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == ("Nothing to export: the store holds no gauge or sum points from "
                            "2020-01-01T00:00:00+00:00 to 2020-01-02T00:00:00+00:00; nothing "
                            f"was written to {to}\n")
    assert not to.parent.exists()  # not even the exports/ directory it would have made
    a_file = tmp_path / "exports" / "a-file"
    a_file.parent.mkdir()
    a_file.write_text("not a directory")
    assert error_of(export("--api", server.api, "--to", str(a_file))) == (
        f"Error: --to: {a_file} is a file, not a directory; pick a directory (it is created "
        "if missing)")
    assert error_of(export("--api", server.api, "--to", str(a_file / "sub"))) == (
        f"Error: --to: cannot write into {a_file / 'sub'} (Not a directory); pick a directory "
        "this process may write to")
    gone = f"127.0.0.1:{free_port()}"
    message = error_of(export("--api", gone, "--to", str(to)))
    assert message.startswith(f"Error: --api: no otel-hms server answers at {gone} (")
    assert message.endswith("start `otel-hms serve`, pass --api HOST:PORT, or --db FILE to "
                            "export a store file no server holds")
    assert error_of(export("--db", str(tmp_path / "none.duckdb"), "--to", str(to))) == (
        f"Error: --db: no store file {tmp_path / 'none.duckdb'}; pass the file "
        "`otel-hms serve --db` writes, or leave out --db to export through the server")
    assert error_of(export("--db", str(a_file), "--to", str(to))).startswith(
        f"Error: --db: {a_file} is not a usable DuckDB file: ")
    assert not to.exists()
    assert a_file.read_text() == "not a directory"


def test_unwritable_directory(start_server: StartServer, tmp_path: Path) -> None:
    """A directory nobody may write into: /sys, a read-only one, and for root (which ignores
    modes, as in CI) immutable too."""
    server = start_server("--export-root", "/")
    message = error_of(export("--api", server.api, "--to", "/sys/otel-hms-export-test"))
    assert message.startswith("Error: --to: cannot write into /sys/otel-hms-export-test (")
    assert message.endswith("); pick a directory this process may write to")
    locked = tmp_path / "read-only"
    locked.mkdir(mode=0o555)
    as_root = os.geteuid() == 0
    if as_root and subprocess.run(["chattr", "+i", str(locked)], check=False).returncode != 0:
        pytest.skip("root writes into read-only directories and chattr +i is not available")
    try:
        reason = "Operation not permitted" if as_root else "Permission denied"
        assert error_of(export("--api", server.api, "--to", str(locked / "out"))) == (
            f"Error: --to: cannot write into {locked / 'out'} ({reason}); pick a "
            "directory this process may write to")
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_a_second_export_into_the_same_directory_waits_its_turn(
        loaded: ServerProcess, tmp_path: Path) -> None:
    to = tmp_path / "exports" / "out"
    to.mkdir(parents=True)
    fd = os.open(to, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running export holds
        assert error_of(export("--api", loaded.api, "--to", str(to), "--since", SINCE,
                               "--until", UNTIL)) == (
            f"Error: --to: another export is writing into {to}; wait for it to finish and "
            "run this one again")
    finally:
        os.close(fd)
    assert files(to) == []
    exported(loaded, to)
    assert len(files(to)) == 7


def test_token_and_export_root(start_server: StartServer, tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    server = start_server("--auth-token", "s3cret", "--export-root", str(root))
    server.token = "s3cret"
    send(server, every_kind())
    args = ("--api", server.api, "--since", SINCE, "--until", UNTIL, "--kind", "summary")
    assert error_of(export(*args, "--to", str(root / "a"))) == (
        "Error: missing or wrong bearer token: send 'Authorization: Bearer <token>'")
    assert error_of(export(*args, "--to", str(tmp_path / "elsewhere"), "--token", "s3cret")) \
        == (f"Error: --to: {tmp_path / 'elsewhere'} is outside the server's export_root "
            f"{root}; export into a directory under it")
    done = export(*args, "--to", str(root / "a"), env={"OTEL_HMS_AUTH_TOKEN": "s3cret"})
    assert done.returncode == 0, done.stderr
    assert files(root / "a") == ["kind=summary/date=2026-01-01/hour-00.parquet"]
    assert not (tmp_path / "elsewhere").exists()


def post_export(server: ServerProcess, body: bytes) -> tuple[int, str]:
    r = urllib.request.Request(f"http://{server.api}/api/v1/export", data=body, method="POST",
                               headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, str(json.load(exc)["error"])


def test_the_endpoint_refuses_bad_bodies(server: ServerProcess, tmp_path: Path) -> None:
    usage = ('body must be JSON: {"to": "/absolute/dir", "since": "24h", "until": "now", '
             '"kinds": ["gauge"], "metrics": ["name"]}')
    assert post_export(server, b"not json") == (400, usage)
    assert post_export(server, b'{"to": 5}') == (400, usage)
    assert post_export(server, json.dumps({"to": str(tmp_path), "kinds": "gauge"}).encode()) \
        == (400, usage)
    assert post_export(server, b'{"to": "relative/dir"}') == (
        400, "--to: 'relative/dir' must be an absolute path on the server's machine")
    assert post_export(server, json.dumps({"to": str(tmp_path / "exports" / "x"),
                                           "kinds": ["gauges"]}).encode()) == (
        400, "--kind: unknown kind 'gauges'; use gauge, sum, histogram, exp_histogram or "
             "summary")
    status, body = post_export(server, json.dumps({"to": str(tmp_path / "exports" / "x"),
                                                   "since": 0, "until": 60}).encode())
    assert status == 200 and json.loads(body)["files"] == []
    assert not (tmp_path / "exports").exists()


def test_the_server_writes_only_under_exports_beside_the_store(loaded: ServerProcess,
                                                               tmp_path: Path) -> None:
    """Unset, export_root is exports/ beside the store file: paths that leave it, by ``..``
    or through a symlink, are refused with 400 naming it, and nothing is written there."""
    root = tmp_path / "exports"
    assert loaded.db.parent == tmp_path and not root.exists()
    body = {"since": SINCE, "until": UNTIL, "kinds": ["summary"]}

    def refused(to: str) -> tuple[int, str]:
        return post_export(loaded, json.dumps({**body, "to": to}).encode())

    outside = tmp_path / "elsewhere"
    for to in (str(outside), f"{root}/../elsewhere", "/etc/cron.d", str(tmp_path),
               f"{root}-sibling"):
        assert refused(to) == (400, f"--to: {os.path.abspath(to)} is outside the server's "
                                    f"export_root {root}; export into a directory under it")
    root.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    assert refused(str(root / "escape" / "x")) == (
        400, f"--to: {root / 'escape' / 'x'} is outside the server's export_root {root}; "
             "export into a directory under it")
    assert not outside.exists() and files(root) == []
    # The CLI gets the same refusal as one line.
    assert error_of(export("--api", loaded.api, "--to", str(outside), "--since", SINCE,
                           "--until", UNTIL)) == (
        f"Error: --to: {outside} is outside the server's export_root {root}; export into a "
        "directory under it")
    # A symlink that stays inside is fine, and so is the root itself.
    (root / "daily").mkdir()
    (root / "today").symlink_to(root / "daily", target_is_directory=True)
    status, answer = refused(str(root / "today"))
    assert status == 200 and json.loads(answer)["rows"] == 1
    assert files(root) == ["daily/kind=summary/date=2026-01-01/hour-00.parquet"]
    status, answer = refused(str(root))
    assert status == 200 and json.loads(answer)["dir"] == str(root)
    assert not outside.exists()
