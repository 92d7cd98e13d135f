"""User SQL cannot write: every road to it (``POST /api/v1/sql``, ``otel-hms sql``, alert
rules, backtests, SLOs) against a store of 1,000 series, each attack asserting the refusal's
text and that the stored rows are exactly what they were, and that ingest still shows.

The attacks are the ones that once worked (issue 12) and a corpus of bypass attempts; the
database refuses each of them even where the text check would not (the read-only
transaction, the locked configuration, no external access).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerProcess, StartServer
from otlp_requests import gauge_request

T0 = 1_700_000_000_000_000_000
SERIES = 1_000
COUNTS = ("SELECT (SELECT count(*) FROM series) AS series, "
          "(SELECT count(*) FROM points_gauge) AS points, "
          "(SELECT sum(value) FROM points_gauge) AS total, "
          "(SELECT count(*) FROM otel_metrics_gauge) AS visible")
STORED = {"series": SERIES, "points": SERIES, "total": float(sum(range(SERIES))),
          "visible": SERIES}
READ_ONLY = "only read-only SELECT queries are allowed here"
TAIL = "the store is written by the receiver alone"


def post_sql(server: ServerProcess, sql: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://{server.api}/api/v1/sql", data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def load(server: ServerProcess) -> None:
    server.export(gauge_request("load", [({"i": str(i)}, T0, float(i))
                                         for i in range(SERIES)]))


def stored(server: ServerProcess) -> dict[str, Any]:
    return server.sql(COUNTS)[0]


def assert_ingest_still_shows(server: ServerProcess) -> None:
    """Points for a known series and a new one are stored and visible: the writer's cache
    of known series still matches the series table."""
    server.export(gauge_request("load", [({"i": "7"}, T0 + 1, 70.0),
                                         ({"i": "new"}, T0 + 1, 1.0)]))
    assert server.sql("SELECT Attributes['i'] AS i, Value AS v FROM otel_metrics_gauge "
                      f"WHERE TimeUnixNano = {T0 + 1} ORDER BY i") == [
        {"i": "7", "v": 70.0}, {"i": "new", "v": 1.0}]
    assert stored(server) == {"series": SERIES + 1, "points": SERIES + 2,
                              "total": STORED["total"] + 71.0, "visible": SERIES + 2}


@pytest.fixture
def loaded(start_server: StartServer) -> ServerProcess:
    server = start_server()
    load(server)
    assert stored(server) == STORED
    return server


def test_the_issues_two_attacks_are_refused_and_change_nothing(loaded: ServerProcess) -> None:
    status, body = post_sql(loaded, "WITH x AS (DELETE FROM series RETURNING 1) "
                                    "SELECT count(*) FROM x")
    assert (status, body) == (400, {"error": f"{READ_ONLY} (got DELETE inside the query); "
                                             f"{TAIL}"})
    result = subprocess.run(
        [sys.executable, "-m", "otel_hms", "sql", "--api", loaded.api,
         "WITH x AS (UPDATE points_gauge SET value=-1 RETURNING 1) SELECT count(*) FROM x"],
        capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"Error: query refused: {READ_ONLY} (got UPDATE inside the "
                             f"query); {TAIL}\n")
    status, body = post_sql(loaded, "SELECT * FROM checkpoint()")
    assert status == 400
    assert body["error"].startswith("checkpoint() is not allowed in queries here: it writes "
                                    "the store's checkpoint")
    assert stored(loaded) == STORED
    assert_ingest_still_shows(loaded)


WIPE = """\
groups:
  - name: attack
    rules:
      - alert: Wipe
        sql: WITH x AS (DELETE FROM series RETURNING 1) SELECT count(*) AS value FROM x
"""
REWRITE = """\
groups:
  - name: attack
    rules:
      - alert: Rewrite
        sql: SELECT 1 AS value
        condition: value IN (SELECT 1 FROM (WITH y AS (UPDATE points_gauge SET value = -1
          RETURNING 1) SELECT * FROM y))
"""


def refused(request: urllib.request.Request) -> tuple[int, Any]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    with caught.value as reply:
        return reply.code, json.load(reply)


def test_alert_rules_backtests_and_slos_refuse_writes(start_server: StartServer,
                                                      tmp_path: Path) -> None:
    """Rule and SLO SQL is checked as it loads, with the SQL endpoint's own check."""
    wipe, rewrite = tmp_path / "wipe.yaml", tmp_path / "rewrite.yaml"
    wipe.write_text(WIPE)
    rewrite.write_text(REWRITE)
    checked = subprocess.run([sys.executable, "-m", "otel_hms", "rules", "check", str(wipe)],
                             capture_output=True, text=True, timeout=60)
    assert (checked.returncode, checked.stderr) == (1, (
        f"Error: {wipe}: group attack rule Wipe.sql: must be a read-only SELECT "
        "(got DELETE inside the query)\n"))
    refused_start = start_server("--rules", str(rewrite), wait=False)
    assert refused_start.proc.wait(60) == 1
    assert refused_start.log.read_text() == (
        f"Error: {rewrite}: group attack rule Rewrite.condition: must be one SQL "
        "boolean expression like value > 2 (must be a read-only SELECT (got UPDATE inside "
        "the query))\n")

    server = start_server()
    load(server)
    backtest = urllib.request.Request(
        f"http://{server.api}/api/v1/rules/backtest", method="POST",
        data=json.dumps({"rules": WIPE, "since": "5s"}).encode())
    assert refused(backtest) == (400, {"error": (
        "rules: group attack rule Wipe.sql: must be a read-only SELECT (got "
        "DELETE inside the query)")})
    slo = urllib.request.Request(
        f"http://{server.api}/api/v1/slos", method="POST", data=json.dumps({
            "name": "wipe", "objective": 0.99, "sli": {
                "good": "SELECT count(*) FROM (WITH x AS (DELETE FROM series RETURNING 1) "
                        "SELECT * FROM x) WHERE window_start IS NOT NULL",
                "total": "SELECT 1 WHERE window_start IS NOT NULL"}}).encode())
    assert refused(slo) == (400, {"error": (
        "POST /api/v1/slos: slo wipe.sli.good: must be a read-only SELECT (got DELETE inside "
        "the query)")})
    assert stored(server) == STORED
    assert_ingest_still_shows(server)


def ro(what: str) -> str:
    return f"{READ_ONLY} ({what}); {TAIL}"


def fn(name: str, why: str) -> str:
    return (f"{name}() is not allowed in queries here: it {why}; the SQL endpoint and alert "
            "rules only read the store")


NOT_READ_ONLY = ("is not one of the table functions that only read (allowed: range, "
                 "generate_series, unnest, the duckdb_* catalogue and the store's own views and "
                 "macros)")
# Bypass attempts and the first line of each refusal.  Keep it growing: a new attempt goes
# here with the refusal it must get.
ATTACKS = {
    'WITH x AS (DELETE FROM series RETURNING 1) SELECT count(*) FROM x':
        ro('got DELETE inside the query'),
    'WITH x AS (UPDATE points_gauge SET value = -1 RETURNING 1) SELECT count(*) FROM x':
        ro('got UPDATE inside the query'),
    'WITH x AS (INSERT INTO series SELECT * FROM series RETURNING 1) SELECT count(*) FROM x':
        ro('got INSERT inside the query'),
    'WITH a AS (SELECT 1), x AS (DELETE FROM points_gauge RETURNING 1) SELECT * FROM a, x':
        ro('got DELETE inside the query'),
    'WITH a AS (WITH x AS (DELETE FROM series RETURNING 1) SELECT * FROM x) SELECT * FROM a':
        ro('got DELETE inside the query'),
    'SELECT * FROM (WITH x AS (DELETE FROM series RETURNING 1) SELECT * FROM x)':
        ro('got DELETE inside the query'),
    ("SELECT 1 WHERE EXISTS (WITH x AS (UPDATE series SET metric_name = 'x' RETURNING 1) "
     'SELECT * FROM x)'):
        ro('got UPDATE inside the query'),
    'SELECT (WITH x AS (DELETE FROM series RETURNING 1) SELECT count(*) FROM x)':
        ro('got DELETE inside the query'),
    'SELECT 1 UNION ALL (WITH x AS (DELETE FROM series RETURNING 1) SELECT count(*) FROM x)':
        ro('got DELETE inside the query'),
    ('WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3), x AS '
     '(DELETE FROM series RETURNING 1) SELECT * FROM r, x'):
        'Parser Error: Recursive CTEs with DML statements are not supported',
    'WITH x AS MATERIALIZED (DELETE FROM series RETURNING 1) SELECT count(*) FROM x':
        ro('got DELETE inside the query'),
    '/* harmless */ wItH x aS (dElEtE fRoM "SERIES" rEtUrNiNg 1) SeLeCt CoUnT(*) fRoM x -- done':
        ro('got DELETE inside the query'),
    'WITH x AS (DELETE FROM main.series RETURNING 1) SELECT count(*) FROM x':
        ro('got DELETE inside the query'),
    ('WITH x AS (DELETE FROM store.main.series WHERE true RETURNING series_id) SELECT '
     'count(*) FROM x'):
        ro('got DELETE inside the query'),
    ('WITH x AS (UPDATE points_gauge SET value = 0 FROM series WHERE true RETURNING 1) '
     'SELECT count(*) FROM x'):
        ro('got UPDATE inside the query'),
    ("WITH x AS (INSERT OR REPLACE INTO otel_hms_meta VALUES ('schema_version', '0') "
     'RETURNING 1) SELECT * FROM x'):
        ro('got INSERT inside the query'),
    'DELETE FROM series':
        ro('got DELETE'),
    'TRUNCATE series':
        ro('got DELETE'),
    'UPDATE points_gauge SET value = -1':
        ro('got UPDATE'),
    "INSERT INTO otel_hms_meta VALUES ('a', 'b')":
        ro('got INSERT'),
    ('MERGE INTO series USING (SELECT 1 AS id) s ON false WHEN NOT MATCHED THEN INSERT '
     'DEFAULT VALUES'):
        ro('got MERGE_INTO'),
    'EXPLAIN ANALYZE DELETE FROM series':
        ro('got EXPLAIN'),
    'EXPLAIN ANALYZE WITH x AS (DELETE FROM series RETURNING 1) SELECT * FROM x':
        ro('got EXPLAIN'),
    'SELECT * FROM checkpoint()':
        fn('checkpoint', "writes the store's checkpoint"),
    'SELECT * FROM force_checkpoint()':
        fn('force_checkpoint', "writes the store's checkpoint"),
    'SELECT * FROM system.main.checkpoint()':
        fn('checkpoint', "writes the store's checkpoint"),
    'SELECT * FROM "CHECKPOINT"()':
        fn('checkpoint', "writes the store's checkpoint"),
    "SELECT * FROM checkpoint('store')":
        fn('checkpoint', "writes the store's checkpoint"),
    'SELECT 1 WHERE 1 NOT IN (SELECT 1 FROM force_checkpoint())':
        fn('force_checkpoint', "writes the store's checkpoint"),
    'CHECKPOINT':
        ro('got CALL'),
    'FORCE CHECKPOINT':
        ro('got CALL'),
    'CALL checkpoint()':
        ro('got CALL'),
    "SET memory_limit = '1GB'":
        ro('got SET'),
    'RESET memory_limit':
        ro('got SET'),
    'SET GLOBAL enable_external_access = true':
        ro('got SET'),
    '/* select */ SET lock_configuration = false':
        ro('got SET'),
    'SELECT 1; SET threads = 1':
        'send exactly one statement (got 2)',
    'SET VARIABLE x = 1':
        ro('got SET'),
    'USE system':
        ro('got SET'),
    'SELECT * FROM enable_logging()':
        fn('enable_logging', "changes the server's settings"),
    'SELECT * FROM disable_logging()':
        fn('disable_logging', "changes the server's settings"),
    'SELECT * FROM enable_profiling()':
        fn('enable_profiling', "changes the server's settings"),
    "SELECT * FROM add_grammar_extension('x')":
        fn('add_grammar_extension', "changes the server's SQL parser"),
    'SELECT * FROM truncate_duckdb_logs()':
        fn('truncate_duckdb_logs', "deletes DuckDB's log"),
    "SELECT write_log('forged line')":
        fn('write_log', "writes DuckDB's log"),
    'PRAGMA force_checkpoint':
        ro('got PRAGMA'),
    "PRAGMA memory_limit = '1GB'":
        ro('got SET'),
    "PRAGMA table_info('series')":
        ro('got PRAGMA'),
    'CALL pragma_version()':
        ro('got CALL'),
    "SELECT * FROM query('SELECT 1')":
        fn('query', 'runs SQL built from a string'),
    "SELECT * FROM query('DELETE FROM series')":
        fn('query', 'runs SQL built from a string'),
    "SELECT * FROM query('SELECT * FROM checkp' || 'oint()')":
        fn('query', 'runs SQL built from a string'),
    "SELECT * FROM query_table('series')":
        fn('query_table', 'runs SQL built from a string'),
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))":
        fn('json_execute_serialized_sql', 'runs SQL built from a string'),
    'PREPARE wipe AS DELETE FROM series':
        ro('got PREPARE'),
    'EXECUTE wipe':
        ro('got EXECUTE'),
    'DEALLOCATE wipe':
        ro('got DROP'),
    'PREPARE ok AS SELECT 1':
        ro('got PREPARE'),
    'SELECT 1; DELETE FROM series':
        'send exactly one statement (got 2)',
    'SELECT 1;;DELETE FROM series':
        'send exactly one statement (got 2)',
    'SELECT 1 -- ;\n; DELETE FROM series':
        'send exactly one statement (got 2)',
    "SELECT ';' /* ; */; DELETE FROM series":
        'send exactly one statement (got 2)',
    'COMMIT':
        ro('got TRANSACTION'),
    'ROLLBACK':
        ro('got TRANSACTION'),
    'BEGIN TRANSACTION':
        ro('got TRANSACTION'),
    'ABORT':
        ro('got TRANSACTION'),
    "ATTACH '/tmp/otel-hms-attack.duckdb' AS other":
        ro('got ATTACH'),
    "ATTACH ':memory:' AS other":
        ro('got ATTACH'),
    'DETACH store':
        ro('got DETACH'),
    "COPY series TO '/tmp/otel-hms-attack.csv'":
        ro('got COPY'),
    "COPY (SELECT * FROM series) TO '/tmp/otel-hms-attack.csv'":
        ro('got COPY'),
    "COPY series FROM '/etc/passwd'":
        ro('got COPY'),
    "EXPORT DATABASE '/tmp/otel-hms-attack'":
        ro('got EXPORT'),
    "IMPORT DATABASE '/tmp/otel-hms-attack'":
        ro('got PRAGMA'),
    "SELECT * FROM read_csv('/etc/passwd')":
        fn('read_csv', "reads files on the server's machine"),
    "SELECT * FROM read_csv_auto('/etc/passwd', sep = ':')":
        fn('read_csv_auto', "reads files on the server's machine"),
    "SELECT * FROM read_text('/etc/passwd')":
        fn('read_text', "reads files on the server's machine"),
    "SELECT * FROM read_blob('/etc/passwd')":
        fn('read_blob', "reads files on the server's machine"),
    "SELECT * FROM glob('/etc/*')":
        fn('glob', "reads files on the server's machine"),
    "SELECT * FROM '/etc/passwd'":
        'Catalog Error: Table with name /etc/passwd does not exist!',
    "SELECT * FROM 'http://127.0.0.1:1/x.csv'":
        ('Permission Error: Cannot access file "http://127.0.0.1:1/x.csv" - file system '
         'operations are disabled by configuration'),
    "SELECT * FROM read_parquet('http://127.0.0.1:1/x.parquet')":
        fn('read_parquet', "reads files on the server's machine"),
    "SELECT * FROM read_duckdb('/tmp/otel-hms-attack.duckdb')":
        fn('read_duckdb', "reads files on the server's machine"),
    "SELECT * FROM sniff_csv('/etc/passwd')":
        fn('sniff_csv', "reads files on the server's machine"),
    'SELECT * FROM duckdb_secrets()':
        fn('duckdb_secrets', NOT_READ_ONLY),
    'SELECT * FROM duckdb_extensions()':
        fn('duckdb_extensions', NOT_READ_ONLY),
    'INSTALL httpfs':
        ro('got LOAD'),
    'LOAD httpfs':
        ro('got LOAD'),
    'FORCE INSTALL httpfs':
        ro('got LOAD'),
    "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')":
        ro('got CREATE'),
    'SELECT * FROM arrow_scan(0, 0, 0)':
        fn('arrow_scan', "reads the server's memory"),
    'SELECT * FROM pandas_scan(0)':
        fn('pandas_scan', "reads the server's memory"),
    "SELECT * FROM python_map_function('x', 'y')":
        fn('python_map_function', "reads the server's memory"),
    'CREATE TEMP TABLE t AS SELECT 1':
        ro('got CREATE'),
    'CREATE MACRO m() AS 1':
        ro('got CREATE'),
    'CREATE VIEW v AS SELECT 1':
        ro('got CREATE'),
    'DROP VIEW otel_metrics_gauge':
        ro('got DROP'),
    'ALTER TABLE series RENAME TO s':
        ro('got ALTER'),
    'CREATE SEQUENCE attack_seq':
        ro('got CREATE'),
    "SELECT nextval('otel_hms_series_seq')":
        fn('nextval', 'changes a sequence'),
    "SELECT setval('otel_hms_series_seq', 1)":
        fn('setval', 'changes a sequence'),
    'VACUUM':
        ro('got VACUUM'),
    'ANALYZE':
        ro('got VACUUM'),
    'PIVOT series ON metric_name':
        ro('got MULTI'),
    'DESCRIBE DELETE FROM series':
        'Parser Error: syntax error at or near "FROM"',
}
# Reads that look like attacks but only read: answered, and nothing changes.
READS = [
    "SELECT * FROM pragma_storage_info('series') LIMIT 1",
    "SELECT count(*) FROM pragma_table_info('series')",
    "SELECT count(*) FROM duckdb_settings()",
    "SELECT current_setting('lock_configuration')",
    "DESCRIBE series",
    "SUMMARIZE points_gauge",
    "FROM otel_metrics_gauge SELECT count(*)",
]
LEFT_BEHIND = ["/tmp/otel-hms-attack.csv", "/tmp/otel-hms-attack", "/tmp/otel-hms-attack.duckdb"]


def test_attack_corpus_is_refused_and_changes_nothing(loaded: ServerProcess) -> None:
    answers, changed = {}, []
    for sql in ATTACKS:
        status, body = post_sql(loaded, sql)
        answers[sql] = body["error"].splitlines()[0] if status == 400 else f"HTTP {status}"
        if stored(loaded) != STORED:
            changed.append(sql)
    assert answers == ATTACKS
    for sql in READS:
        status, _ = post_sql(loaded, sql)
        if status != 200 or stored(loaded) != STORED:
            changed.append(sql)
    assert changed == []
    assert [p for p in LEFT_BEHIND if os.path.exists(p)] == []
    assert loaded.scalar("SELECT current_setting('lock_configuration')") is True
    assert_ingest_still_shows(loaded)


def test_the_database_refuses_what_the_check_would_have(tmp_path: Path) -> None:
    """The second line: SQL run on ``read_only_cursor`` of a locked store, with no check of
    its text at all, still cannot write, change a setting or touch a file."""
    import duckdb

    from otel_hms.query.read_only import read_only_cursor
    from otel_hms.storage.store import lock_configuration, open_store

    con = open_store(str(tmp_path / "store.duckdb"))
    con.execute("CREATE TABLE kept AS SELECT range AS id, 'm' AS name FROM range(10)")
    con.execute("CREATE SEQUENCE counter")
    lock_configuration(con)
    refusals = {
        "WITH x AS (DELETE FROM kept RETURNING 1) SELECT count(*) FROM x":
            'Cannot write to database "store" - transaction is launched in read-only mode',
        "WITH x AS (UPDATE kept SET name = 'x' RETURNING 1) SELECT * FROM x":
            'Cannot write to database "store" - transaction is launched in read-only mode',
        "WITH x AS (INSERT INTO kept VALUES (99, 'y') RETURNING 1) SELECT * FROM x":
            'Cannot write to database "store" - transaction is launched in read-only mode',
        "SELECT nextval('counter')":
            'Cannot write to database "store" - transaction is launched in read-only mode',
        "SELECT * FROM force_checkpoint()":
            "Cannot FORCE CHECKPOINT: the current transaction has been started for this "
            "database",
        "SET memory_limit = '1GB'": 'Cannot change configuration option "memory_limit" - the '
                                    "configuration has been locked",
        "SELECT * FROM enable_logging()": 'Cannot change configuration option '
                                          '"enable_logging" - the configuration has been locked',
        "SELECT * FROM read_csv('/etc/passwd')": 'Cannot access file "/etc/passwd" - file '
                                                 "system operations are disabled by "
                                                 "configuration",
        "COPY kept TO '/tmp/otel-hms-series.csv'": 'Cannot access file '
                                                     '"/tmp/otel-hms-series.csv" - file system '
                                                     "operations are disabled by configuration",
        "ATTACH '/tmp/otel-hms-other.duckdb' AS other": 'Cannot access file '
                                                        '"/tmp/otel-hms-other.duckdb" - file '
                                                        "system operations are disabled",
        "INSTALL httpfs": "file system operations are disabled by configuration",
        "LOAD httpfs": "Loading external extensions is disabled through configuration",
    }
    for sql, message in refusals.items():
        with read_only_cursor(con) as cursor:
            with pytest.raises(duckdb.Error) as caught:
                cursor.execute(sql)
            assert message in str(caught.value), sql
    assert con.execute("SELECT count(*), count(*) FILTER (name = 'm') FROM kept"
                       ).fetchone() == (10, 10)
    assert not os.path.exists("/tmp/otel-hms-series.csv")
    con.close()
