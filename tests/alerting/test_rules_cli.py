"""``otel-hms rules check|test|backtest`` and the one-line errors for bad rules files."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_hms.alerting import RuleFileError, load_rules
from otel_hms.cli import main

from alert_receivers import send_latency
from conftest import StartServer

EXAMPLE = """\
groups:
  - name: permits
    interval: 15s
    labels: {team: permits}
    rules:
      - alert: HighLatency
        sql: |
          SELECT Attributes['route'] AS route, max(Value) AS value
          FROM otel_metrics_gauge
          WHERE MetricName = 'request.latency' AND TimeUnix > now() - INTERVAL 5 MINUTE
          GROUP BY ALL
        condition: value > 2
        for: 1m
        keep_firing_for: 0s
        labels: {severity: critical}
        annotations: {summary: "p99 latency {{ value }} s on {{ labels.route }}"}
        notify: [ops-email, oncall-webhook]
        on_no_data: ok
        on_error: keep_last
notifiers:
  ops-email: {type: email, to: ops@example.org, from: hms@example.org, smarthost: "mx:25"}
  oncall-webhook: {type: webhook, url: "http://127.0.0.1:9/hook"}
"""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_accepts_the_documented_example(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, EXAMPLE)
    assert run_cli(capsys, "rules", "check", str(path)) == (
        0, "OK: 1 file(s), 1 group(s), 1 rule(s), 2 notifier(s)\n", "")


BAD = [
    ("for: 1m", "for: soon",
     "group permits rule HighLatency.for: must be a duration like 30s, 5m or 1h "
     "(got 'soon')"),
    ("on_no_data: ok", "on_no_data: maybe",
     "group permits rule HighLatency.on_no_data: must be one of ok, alerting, "
     "keep_last, nodata (got 'maybe')"),
    ("condition: value > 2", "condition: value >",
     "group permits rule HighLatency.condition: must be one SQL boolean expression "
     "like value > 2 (is not valid SQL: Parser Error: syntax error at or near \">\")"),
    ("SELECT Attributes['route']", "DELETE FROM x; SELECT Attributes['route']",
     "group permits rule HighLatency.sql: must be exactly one SELECT statement "
     "(got 2)"),
    ("{{ labels.route }}", "{{ labels.route ",
     "group permits rule HighLatency.annotations.summary: template syntax error: "
     "unexpected end of template, expected 'end of print statement'. (line 1)"),
    ("interval: 15s", "interval: 0s", "group permits.interval: must be > 0 (got '0s')"),
    ("        keep_firing_for: 0s\n", "        keep_firing: 0s\n",
     "group permits rule HighLatency: unknown field 'keep_firing'; known fields: "
     "alert, sql, condition, for, keep_firing_for, labels, annotations, notify, on_no_data, "
     "on_error"),
    ("notify: [ops-email, oncall-webhook]", "notify: [pager]",
     "group permits rule HighLatency.notify: unknown notifier 'pager'; define it "
     "under notifiers:"),
    ("type: webhook, url: \"http://127.0.0.1:9/hook\"", "type: webhook",
     "notifier oncall-webhook.url: is required for a webhook notifier"),
    ("smarthost: \"mx:25\"", "smarthost: mx",
     "notifier ops-email.smarthost: expected HOST:PORT (got 'mx')"),
    ("  - name: permits", "  - name: [permits]",
     "groups[0].name: must be a non-empty string (got ['permits'])"),
    ("      - alert: HighLatency\n", "      - alert: High Latency\n",
     "group permits rules[0].alert: must be a name of letters, digits, "
     "_ . : - (got 'High Latency')"),
    ("    labels: {team: permits}", "    labels: {team: permits",
     "not valid YAML at line 5: expected ',' or '}', but got ':'"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_rules_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             old: str, new: str, message: str) -> None:
    assert old in EXAMPLE
    path = write(tmp_path, EXAMPLE.replace(old, new))
    code, out, err = run_cli(capsys, "rules", "check", str(path))
    assert (code, out) == (1, "")
    assert err == f"Error: {path}: {message}\n"
    # serve and reloads refuse the file with the same line
    with pytest.raises(RuleFileError) as refused:
        load_rules([str(path)])
    assert refused.value.problems == (f"{path}: {message}",)


SECOND_FILE = """\
groups:
  - name: permits
    rules:
      - {alert: Copy, sql: SELECT 1 AS value}
  - name: backlog
    interval: 0s
    rules:
      - alert: CasesWaiting
        for: 5m
      - alert: CasesOld
        sql: SELECT max(Valu) AS value FROM otel_metrics_gauge
        notify: [pager]
      - alert: CasesOld
        sql: SELECT 1 AS value
"""


def test_check_reports_every_problem_of_every_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    first = write(tmp_path, EXAMPLE.replace("for: 1m", "for: soon")
                  .replace("on_no_data: ok", "on_no_data: maybe")
                  .replace('smarthost: "mx:25"', "smarthost: mx"))
    second = write(tmp_path, SECOND_FILE, "more.yaml")
    code, out, err = run_cli(capsys, "rules", "check", str(first), str(second))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"Error: {first}: group permits rule HighLatency.for: must be a duration like 30s, 5m "
        "or 1h (got 'soon')",
        f"Error: {first}: group permits rule HighLatency.on_no_data: must be one of ok, "
        "alerting, keep_last, nodata (got 'maybe')",
        f"Error: {first}: notifier ops-email.smarthost: expected HOST:PORT (got 'mx')",
        f"Error: {second}: group backlog.interval: must be > 0 (got '0s')",
        f"Error: {second}: group backlog rule CasesWaiting.sql: is required",
        f"Error: {second}: group backlog rule CasesOld.alert: duplicate alert name in this group "
        "(rules[1] and rules[2]); give each rule its own name",
        f"Error: {second}: group permits: also defined in {first}; group names must be unique",
        f"Error: {second}: group backlog rule CasesOld.notify: unknown notifier 'pager'; define "
        "it under notifiers:",
        f"Error: {second}: group backlog rule CasesOld.sql: Binder Error: Referenced column "
        '"Valu" not found in FROM clause!',
    ]


def test_check_binds_sql_against_the_schema(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, EXAMPLE.replace("max(Value)", "max(Valu)")
                 .replace("{{ labels.route }}", "{{ labels.rout }}"))
    code, out, err = run_cli(capsys, "rules", "check", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"Error: {path}: group permits rule HighLatency.sql: Binder Error: "
                          'Referenced column "Valu" not found in FROM clause!')
    path = write(tmp_path, EXAMPLE.replace("{{ labels.route }}", "{{ labels.rout }}"))
    code, out, err = run_cli(capsys, "rules", "check", str(path))
    assert (code, out, err) == (1, "", f"Error: {path}: group permits rule HighLatency."
                                       "annotations.summary: 'dict object' has no attribute "
                                       "'rout' (the query's labels are route)\n")


TESTS = """\
rule_files: [rules.yaml]
tests:
  - name: latency pages after 1m
    interval: 15s
    input_series:
      - series: 'request.latency{route="/apply", service.name="permits"}'
        values: '1 1 3x8'
      - series: 'request.latency{route="/pay"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 30s
        alertname: HighLatency
        exp_alerts: []
      - eval_time: 1m30s
        alertname: HighLatency
        exp_alerts:
          - exp_labels: {route: /apply, severity: critical, team: permits}
            exp_annotations: {summary: "p99 latency 3.0 s on /apply"}
"""


def test_rules_test_passes_and_fails_with_details(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, EXAMPLE)
    tests = write(tmp_path, TESTS, "rules_test.yaml")
    assert run_cli(capsys, "rules", "test", str(tests)) == (
        0, f"PASS  {tests}: latency pages after 1m\nOK: 1 rule test(s) passed\n", "")

    write(tmp_path, TESTS.replace("eval_time: 1m30s", "eval_time: 1m15s"), "rules_test.yaml")
    code, out, err = run_cli(capsys, "rules", "test", str(tests))
    assert code == 1
    assert out == (
        f"FAIL  {tests}: latency pages after 1m\n"
        "      at 1m15s HighLatency: expected firing [{alertname=\"HighLatency\", "
        "route=\"/apply\", severity=\"critical\", team=\"permits\"} {'summary': 'p99 latency "
        "3.0 s on /apply'}], got [none]\n")
    assert err == "Error: 1 of 1 rule tests failed\n"


def test_backtest_through_the_server_and_offline(start_server: StartServer, tmp_path: Path
                                                 ) -> None:
    rules = write(tmp_path, EXAMPLE.replace("max(Value)", "arg_max(Value, TimeUnix)")
                  .replace("interval: 15s", "interval: 1m").replace("for: 1m", "for: 0s"))
    server = start_server()
    now = time.time()
    for minutes_ago in range(50, 19, -2):  # every 2 minutes: 1.0, then 3.5 from -40, 0.5 from -30
        value = 1.0 if minutes_ago > 40 else 3.5 if minutes_ago > 30 else 0.5
        send_latency(server, {"/apply": value}, at=now - minutes_ago * 60)

    def backtest(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "otel_hms", "rules", "backtest",
                               str(rules), "--since", "1h", "--format", "json", *extra],
                              capture_output=True, text=True, timeout=120)

    for done in (backtest("--api", server.api), None):
        if done is None:
            assert server.stop() == 0
            done = backtest("--db", str(server.db))
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)
        assert [(r["labels"], r["from_state"], r["to_state"]) for r in rows] == [
            ({"route": "/apply", "severity": "critical", "team": "permits"}, a, b)
            for a, b in (("inactive", "pending"), ("pending", "firing"), ("firing", "inactive"))]
        assert [r["value"] for r in rows] == [3.5, 3.5, 3.5]
        fired, resolved = (dt.datetime.fromisoformat(rows[i]["time"]).timestamp() for i in (1, 2))
        assert rows[0]["time"] == rows[1]["time"]  # for: 0s fires at once
        assert now - 40 * 60 <= fired < now - 40 * 60 + 60
        assert now - 30 * 60 <= resolved < now - 30 * 60 + 60


def test_rules_setting_is_a_list_from_flags_yaml_and_env(tmp_path: Path) -> None:
    from otel_hms.config import resolve

    assert resolve({}, None, {}).rules == ()
    assert resolve({}, None, {"OTEL_HMS_RULES": "a.yaml, b.yaml"}).rules == ("a.yaml",
                                                                                "b.yaml")
    config = write(tmp_path, "rules: [c.yaml]\n", "otel-hms.yaml")
    assert resolve({}, str(config), {}).rules == ("c.yaml",)
    assert resolve({"rules": ["d.yaml"]}, str(config), {}).rules == ("d.yaml",)
