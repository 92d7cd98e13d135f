"""Alert rules end to end: data over OTLP into ``otel-hms serve``, notifications out to real
receivers (an HTTP webhook, aiosmtpd, a Debian prometheus-alertmanager, a command)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import ssl
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from otel_hms.alerting.evaluator import fingerprint

from alert_receivers import (
    AlertmanagerProcess,
    SmtpReceiver,
    WebhookReceiver,
    api_get,
    api_post,
    send_latency,
)
from conftest import ServerProcess, StartServer, wait_until

RULE = """\
groups:
  - name: permits
    interval: 1s
    labels: {{team: permits}}
    rules:
      - alert: HighLatency
        sql: |
          SELECT Attributes['route'] AS route, arg_max(Value, TimeUnix) AS value
          FROM otel_metrics_gauge
          WHERE MetricName = 'request.latency' AND TimeUnix > now() - INTERVAL 5 MINUTE
          GROUP BY ALL
        condition: value > 2
        for: {for_}
        labels: {{severity: critical}}
        annotations: {{summary: "p99 latency {{{{ value }}}} s on {{{{ labels.route }}}}"}}
        notify: [{notify}]
{extra_rules}
notifiers:
{notifiers}
"""


def rules_file(tmp_path: Path, notifiers: str, notify: str, for_: str = "0s",
               extra_rules: str = "", name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(RULE.format(for_=for_, notify=notify, extra_rules=extra_rules,
                                notifiers=textwrap.indent(textwrap.dedent(notifiers), "  ")))
    return path


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def webhook_notifier(hook: WebhookReceiver, name: str = "oncall-webhook") -> str:
    return (f"{name}:\n  type: webhook\n  url: {hook.url}/hook\n"
            "  headers: {X-Token: s3cret}\n  backoff: 100ms\n")


def history(server: ServerProcess) -> list[tuple[str, str, str]]:
    rows = server.sql("SELECT labels['route'] AS route, from_state, to_state FROM alert_history "
                      "WHERE alertname = 'HighLatency' ORDER BY time, to_state DESC")
    return [(r["route"], r["from_state"], r["to_state"]) for r in rows]


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_webhook_fires_and_resolves_with_the_v4_payload(start_server: StartServer,
                                                        hook: WebhookReceiver,
                                                        tmp_path: Path) -> None:
    rules = rules_file(tmp_path, webhook_notifier(hook), "oncall-webhook")
    server = start_server("--rules", str(rules))
    send_latency(server, {"/apply": 3.5, "/pay": 1.0})
    (body,) = wait_until(lambda: hook.bodies("/hook"), message="firing webhook")
    labels = {"alertname": "HighLatency", "route": "/apply", "severity": "critical",
              "team": "permits"}
    assert hook.requests[0]["headers"]["X-Token"] == "s3cret"
    assert hook.requests[0]["headers"]["Content-Type"] == "application/json"
    (alert,) = body.pop("alerts")
    assert body == {
        "version": "4", "status": "firing", "receiver": "oncall-webhook",
        "groupKey": '{}:{alertname="HighLatency", rulegroup="permits"}', "truncatedAlerts": 0,
        "groupLabels": {"alertname": "HighLatency"}, "commonLabels": labels,
        "commonAnnotations": {"summary": "p99 latency 3.5 s on /apply"},
        "externalURL": f"http://{server.api}"}
    starts = alert.pop("startsAt")
    assert abs((parse_time(starts) - dt.datetime.now(dt.UTC)).total_seconds()) < 30
    assert alert == {
        "status": "firing", "labels": labels,
        "annotations": {"summary": "p99 latency 3.5 s on /apply"},
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://{server.api}/api/v1/rules?group=permits&rule=HighLatency",
        "fingerprint": fingerprint(labels)}

    (row,) = server.sql("SELECT state, value, labels['route'] AS route FROM alerts "
                        "WHERE alertname = 'HighLatency'")
    assert row == {"state": "firing", "value": 3.5, "route": "/apply"}
    (api_alert,) = [a for a in api_get(server, "/api/v1/alerts")["alerts"]
                    if a["alertname"] == "HighLatency"]
    assert api_alert["state"] == "firing" and api_alert["labels"] == labels
    rule = api_get(server, "/api/v1/rules")["groups"][0]["rules"][0]
    assert (rule["name"], rule["health"], rule["lastError"]) == ("HighLatency", "ok", None)
    assert rule["alerts"] == {"pending": 0, "firing": 1, "inactive": 0}

    send_latency(server, {"/apply": 0.5})
    wait_until(lambda: len(hook.bodies("/hook")) == 2, message="resolved webhook")
    resolved = hook.bodies("/hook")[1]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["startsAt"] == starts
    assert parse_time(resolved["alerts"][0]["endsAt"]) >= parse_time(starts)
    assert history(server) == [("/apply", "inactive", "pending"), ("/apply", "pending", "firing"),
                               ("/apply", "firing", "inactive")]
    assert len(hook.bodies("/hook")) == 2  # never duplicated


def test_failing_notifier_retries_and_never_blocks_others(start_server: StartServer,
                                                          tmp_path: Path) -> None:
    flaky, good = WebhookReceiver(fail=2), WebhookReceiver()
    try:
        notifiers = (webhook_notifier(flaky, "flaky") + webhook_notifier(good, "good")
                     + "dead:\n  type: webhook\n  url: http://127.0.0.1:9/x\n"
                       "  max_attempts: 1000\n  backoff: 50ms\n")
        rules = rules_file(tmp_path, notifiers, "dead, flaky, good")
        server = start_server("--rules", str(rules))
        send_latency(server, {"/apply": 3.5})
        wait_until(lambda: good.bodies(), message="the working notifier")
        wait_until(lambda: flaky.bodies(), message="the flaky notifier after retries")
        assert flaky.attempts == 3 and len(flaky.bodies()) == 1
        assert flaky.bodies()[0]["alerts"][0]["labels"]["route"] == "/apply"
        status = api_get(server, "/api/v1/rules")
        evaluations = status["groups"][0]["evaluations"]
        # evaluation goes on while "dead" keeps failing
        wait_until(lambda: api_get(server, "/api/v1/rules")["groups"][0]["evaluations"]
                   >= evaluations + 2, message="evaluations to continue")
        stats = api_get(server, "/api/v1/rules")["notifiers"]
        assert stats["dead"]["sent"] == 0 and stats["dead"]["failed_attempts"] >= 2
        assert "127.0.0.1:9" in stats["dead"]["last_error"]
        assert stats["flaky"]["sent"] == 1 and stats["flaky"]["failed_attempts"] == 2
        assert len(good.bodies()) == 1
    finally:
        flaky.close()
        good.close()


def test_restart_continues_for_timer_and_does_not_renotify(start_server: StartServer,
                                                           hook: WebhookReceiver,
                                                           tmp_path: Path) -> None:
    rules = rules_file(tmp_path, webhook_notifier(hook), "oncall-webhook", for_="3s")
    server = start_server("--rules", str(rules))
    send_latency(server, {"/apply": 3.5})
    wait_until(lambda: server.sql("SELECT state FROM alerts WHERE state = 'pending'"),
               message="pending alert")
    active_at = server.scalar("SELECT active_at FROM alerts")
    assert server.stop() == 0
    server = start_server("--rules", str(rules))
    wait_until(lambda: hook.bodies("/hook"), message="firing after restart")
    row = server.sql("SELECT active_at, state, epoch(fired_at) - epoch(active_at) AS held "
                     "FROM alerts")[0]
    assert row["active_at"] == active_at and row["state"] == "firing"
    assert 3 <= row["held"] < 30  # the timer ran on; it did not restart at the restart
    assert history(server) == [("/apply", "inactive", "pending"), ("/apply", "pending", "firing")]

    assert server.stop() == 0  # restart while firing: no second notification, no resolution
    server = start_server("--rules", str(rules))
    wait_until(lambda: api_get(server, "/api/v1/rules")["groups"][0]["evaluations"] >= 3,
               message="three evaluations after restart")
    assert len(hook.bodies("/hook")) == 1
    assert history(server) == [("/apply", "inactive", "pending"), ("/apply", "pending", "firing")]
    assert server.scalar("SELECT state FROM alerts") == "firing"


def test_alertmanager_receives_and_delivers(start_server: StartServer, hook: WebhookReceiver,
                                            tmp_path: Path) -> None:
    am = AlertmanagerProcess(tmp_path, hook.url)
    try:
        notifiers = f"am:\n  type: alertmanager\n  url: {am.url}\n  backoff: 100ms\n"
        server = start_server("--rules", str(rules_file(tmp_path, notifiers, "am")))
        send_latency(server, {"/apply": 3.5})
        (pushed,) = wait_until(lambda: [a for a in am.alerts()
                                        if a["labels"].get("alertname") == "HighLatency"],
                               message="alert in Alertmanager")
        assert pushed["labels"] == {"alertname": "HighLatency", "route": "/apply",
                                    "severity": "critical", "team": "permits"}
        assert pushed["annotations"] == {"summary": "p99 latency 3.5 s on /apply"}
        assert pushed["status"]["state"] == "active"
        # endsAt = evaluation time + 4 x max(interval 1s, resend delay 60s)
        lifetime = parse_time(pushed["endsAt"]) - dt.datetime.now(dt.UTC)
        assert 200 < lifetime.total_seconds() <= 240
        assert pushed["generatorURL"].endswith("/api/v1/rules?group=permits&rule=HighLatency")
        firing = wait_until(lambda: hook.bodies("/am"), message="Alertmanager's webhook")[0]
        assert firing["status"] == "firing" and firing["receiver"] == "hook"
        assert firing["alerts"][0]["labels"]["route"] == "/apply"

        send_latency(server, {"/apply": 0.5})
        wait_until(lambda: [b for b in hook.bodies("/am") if b["status"] == "resolved"],
                   timeout=30, message="Alertmanager's resolved webhook")
    finally:
        am.close()


def test_email_over_smtp_with_starttls_and_login(start_server: StartServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    smtp = SmtpReceiver(login=("hms", "pa55"), tls=tls)
    try:
        notifiers = (f"ops-email:\n  type: email\n  to: [ops@example.org]\n"
                     f"  from: otel-hms@example.org\n  smarthost: 127.0.0.1:{smtp.port}\n"
                     f"  starttls: true\n  ca_file: {tmp_path / 'ca.pem'}\n"
                     "  username: hms\n  password: ${SMTP_PASSWORD}\n")
        server = start_server("--rules", str(rules_file(tmp_path, notifiers, "ops-email")),
                              env={"SMTP_PASSWORD": "pa55"})
        send_latency(server, {"/apply": 3.5})
        (message,) = wait_until(lambda: smtp.messages, message="an e-mail")
        assert smtp.logins == ["hms"]
        sender, recipients, text = message[0], message[1], message[2].replace("\r\n", "\n")
        assert (sender, recipients) == ("otel-hms@example.org", ["ops@example.org"])
        assert "Subject: [FIRING:1] HighLatency (permits)" in text
        assert "To: ops@example.org" in text
        assert "FIRING: HighLatency\n  summary: p99 latency 3.5 s on /apply\n" in text
        assert ("  labels: alertname=HighLatency, route=/apply, severity=critical, "
                "team=permits\n  value: 3.5\n") in text
        send_latency(server, {"/apply": 0.5})
        wait_until(lambda: len(smtp.messages) == 2, message="the resolved e-mail")
        assert "Subject: [RESOLVED] HighLatency (permits)" in smtp.messages[1][2]
    finally:
        smtp.close()


def test_slack_and_command_notifiers(start_server: StartServer, hook: WebhookReceiver,
                                     tmp_path: Path) -> None:
    out = tmp_path / "followups.jsonl"
    script = tmp_path / "open_followup.py"
    script.write_text("import sys\nwith open(sys.argv[1], 'a') as f:\n"
                      "    f.write(sys.stdin.read().strip() + '\\n')\n")
    notifiers = (f"chat:\n  type: slack\n  url: {hook.url}/slack\n  channel: '#ops'\n"
                 f"followup:\n  type: command\n  command: [{json.dumps(sys.executable)}, "
                 f"{json.dumps(str(script))}, {json.dumps(str(out))}]\n")
    server = start_server("--rules", str(rules_file(tmp_path, notifiers, "chat, followup")))
    send_latency(server, {"/apply": 3.5})
    (slack,) = wait_until(lambda: hook.bodies("/slack"), message="slack message")
    assert slack["text"] == "[FIRING:1] HighLatency (permits)"
    assert slack["channel"] == "#ops"
    assert slack["attachments"][0]["color"] == "danger"
    assert "summary: p99 latency 3.5 s on /apply" in slack["attachments"][0]["text"]
    wait_until(lambda: out.exists() and out.read_text(), message="the command to run")
    (payload,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert payload["status"] == "firing" and payload["receiver"] == "followup"
    assert payload["alerts"][0]["labels"]["route"] == "/apply"


BROKEN = """\
      - alert: Broken
        sql: SELECT Attributes['route'] AS route, max(Valu) AS value FROM otel_metrics_gauge
        notify: [oncall-webhook]
"""


def test_failing_rule_fires_rule_evaluation_failed(start_server: StartServer,
                                                    hook: WebhookReceiver,
                                                    tmp_path: Path) -> None:
    rules = rules_file(tmp_path, webhook_notifier(hook), "oncall-webhook", extra_rules=BROKEN)
    server = start_server("--rules", str(rules))
    (body,) = wait_until(lambda: hook.bodies("/hook"), message="RuleEvaluationFailed")
    (alert,) = body["alerts"]
    assert alert["labels"] == {"alertname": "RuleEvaluationFailed", "rule": "Broken",
                               "severity": "warning", "team": "permits"}
    assert alert["annotations"]["summary"] == "rule Broken in group permits cannot be evaluated"
    assert 'Referenced column "Valu" not found' in alert["annotations"]["error"]
    rules_status = api_get(server, "/api/v1/rules")["groups"][0]["rules"]
    broken = next(r for r in rules_status if r["name"] == "Broken")
    assert broken["health"] == "error"
    assert 'Referenced column "Valu" not found' in broken["lastError"]
    ok = next(r for r in rules_status if r["name"] == "HighLatency")
    assert ok["health"] == "nodata"


def _names(server: ServerProcess) -> list[str]:
    return [r["name"] for r in api_get(server, "/api/v1/rules")["groups"][0]["rules"]]


def test_reload_on_post_and_sighup_applies_only_valid_files(start_server: StartServer,
                                                            hook: WebhookReceiver,
                                                            tmp_path: Path) -> None:
    rules = rules_file(tmp_path, webhook_notifier(hook), "oncall-webhook")
    config = tmp_path / "otel-hms.yaml"
    config.write_text(f"rules:\n  - {rules}\n")
    server = start_server("--config", str(config))
    assert _names(server) == ["HighLatency"]

    good = RULE.replace("HighLatency", "SlowPermits")
    rules.write_text(good.format(for_="0s", notify="oncall-webhook", extra_rules="",
                                 notifiers=textwrap.indent(webhook_notifier(hook), "  ")))
    status, body = api_post(server, "/api/v1/rules/reload")
    assert (status, body) == (200, {"status": "ok", "message": "loaded 1 rules in 1 groups"})
    assert _names(server) == ["SlowPermits"]

    rules.write_text(rules.read_text().replace("for: 0s", "for: soon"))
    status, body = api_post(server, "/api/v1/rules/reload")
    assert status == 400
    assert body["error"] == (f"{rules}: group permits rule SlowPermits.for: must be "
                             "a duration like 30s, 5m or 1h (got 'soon')")
    assert _names(server) == ["SlowPermits"]

    rules.write_text(RULE.format(for_="0s", notify="oncall-webhook", extra_rules=BROKEN,
                                 notifiers=textwrap.indent(webhook_notifier(hook), "  ")))
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _names(server) == ["HighLatency", "Broken"], message="SIGHUP reload")
    last: Any = api_get(server, "/api/v1/rules")["lastReload"]
    assert last["ok"] is True


def test_bad_rules_file_stops_serve_with_one_line(start_server: StartServer,
                                                  tmp_path: Path) -> None:
    rules = rules_file(tmp_path, "", "nowhere")
    server = start_server("--rules", str(rules), wait=False)
    assert server.proc.wait(30) == 1
    assert server.log.read_text().strip().splitlines()[-1] == (
        f"Error: {rules}: group permits rule HighLatency.notify: unknown notifier "
        "'nowhere'; define it under notifiers:")


def test_reload_keeps_retrying_unchanged_notifiers(start_server: StartServer,
                                                   tmp_path: Path) -> None:
    flaky = WebhookReceiver(fail=2)
    try:
        notifier = (f"flaky:\n  type: webhook\n  url: {flaky.url}/hook\n  backoff: 2s\n")
        rules = rules_file(tmp_path, notifier, "flaky")
        server = start_server("--rules", str(rules))
        send_latency(server, {"/apply": 3.5})
        wait_until(lambda: flaky.attempts >= 1, message="a first failed attempt")
        assert api_post(server, "/api/v1/rules/reload")[0] == 200
        wait_until(lambda: flaky.bodies(), timeout=30, message="delivery after the reload")
        assert (flaky.attempts, len(flaky.bodies())) == (3, 1)
        assert flaky.bodies()[0]["alerts"][0]["labels"]["route"] == "/apply"
    finally:
        flaky.close()


def test_alerting_endpoints_need_the_bearer_token(start_server: StartServer) -> None:
    server = start_server("--auth-token", "t0ken")
    for method, path in (("GET", "/api/v1/alerts"), ("GET", "/api/v1/rules"),
                         ("GET", "/api/v1/slos"), ("POST", "/api/v1/rules/reload")):
        request = urllib.request.Request(f"http://{server.api}{path}", method=method,
                                         data=b"" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        refused.value.close()
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"] == 'Bearer realm="otel-hms"'
        request.add_header("Authorization", "Bearer t0ken")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
