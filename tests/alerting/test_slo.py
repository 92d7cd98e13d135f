"""SLOs: the generated multiwindow multi-burn-rate alerts fire exactly when the SRE
workbook says, and the API reports the error budget left (Decimal arithmetic)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_hms.alerting.check import check_files
from otel_hms.alerting.rule_files import load_rules
from otel_hms.alerting.ruletest import run_file

from alert_receivers import api_get, api_request
from conftest import StartServer, wait_until
from otlp_requests import gauge_request, kv

SLO = """\
slos:
  - name: cases
    objective: {objective}
    interval: 1m
    labels: {{team: permits}}
    sli:
      good: >-
        SELECT count(*) FILTER (WHERE Value < 172800) FROM otel_points
        WHERE MetricName = 'case.processing_seconds'
        AND TimeUnix > window_start AND TimeUnix <= window_end
      total: >-
        SELECT count(*) FROM otel_points WHERE MetricName = 'case.processing_seconds'
        AND TimeUnix > window_start AND TimeUnix <= window_end
"""

# One case a minute: 60 processed in time, then every one late.  With a 99 % objective
# (budget 1 %), the 6h/30m pair passes 6x at 63m (4 late of 64) and the 1h/5m pair
# passes 14.4x at 68m (9 late of the last 60: burn 15).
TESTS = """\
rule_files: [slo.yaml]
tests:
  - name: late cases burn the budget
    interval: 1m
    input_series:
      - series: 'case.processing_seconds{service.name="permits"}'
        values: '100x59 200000x20'
    alert_rule_test:
      - {eval_time: 62m, alertname: CasesBurnRatePageSlow, exp_alerts: []}
      - eval_time: 63m
        alertname: CasesBurnRatePageSlow
        exp_alerts:
          - exp_labels: {slo: cases, severity: page, team: permits, long_window: 6h,
                         short_window: 30m}
      - {eval_time: 67m, alertname: CasesBurnRatePageFast, exp_alerts: []}
      - eval_time: 68m
        alertname: CasesBurnRatePageFast
        exp_alerts:
          - exp_labels: {slo: cases, severity: page, team: permits, long_window: 1h,
                         short_window: 5m}
            exp_annotations:
              summary: "SLO cases (99%): error budget burning 15.0x over 1h (and above
                14.4x over 5m)"
"""


def test_burn_rate_alerts_fire_at_the_workbook_thresholds(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(SLO.format(objective="99%"))
    (tmp_path / "slo_test.yaml").write_text(TESTS)
    assert run_file(str(tmp_path / "slo_test.yaml")) == (1, [("late cases burn the budget", [])])


def test_generated_rules_bind_and_budget_is_exact(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(SLO.format(objective="99.9%") + """\
  - name: latency
    objective: 0.99
    sli:
      histogram: {metric: request_latency_seconds, le: 2.0}
""")
    rules, problems = check_files([str(tmp_path / "slo.yaml")])
    assert problems == []
    assert [r.alert for r in rules.rules()] == [
        "CasesBurnRatePageFast", "CasesBurnRatePageSlow", "CasesBurnRateTicket",
        "LatencyBurnRatePageFast", "LatencyBurnRatePageSlow", "LatencyBurnRateTicket"]
    (cases, latency) = load_rules([str(tmp_path / "slo.yaml")]).slos
    assert cases.error_budget == Decimal("0.001") and latency.error_budget == Decimal("0.01")


def histogram_request(now: int) -> ExportMetricsServiceRequest:
    """Two delta histogram points, bounds 0.5, 2, 5: 185 of 200 observations <= 2 s."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "permits"))
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = "request_latency_seconds"
    metric.histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    for i, buckets in enumerate(([10, 80, 8, 2], [5, 90, 4, 1])):
        dp = metric.histogram.data_points.add()
        dp.start_time_unix_nano = now - (3 - i) * 10**9
        dp.time_unix_nano = now - (2 - i) * 10**9
        dp.explicit_bounds.extend([0.5, 2.0, 5.0])
        dp.bucket_counts.extend(buckets)
        dp.count = sum(buckets)
    return request


def test_slo_api_reports_budget_and_ticket_fires(start_server: StartServer,
                                                 tmp_path: Path) -> None:
    rules = tmp_path / "slo.yaml"
    rules.write_text(SLO.format(objective="99.5%").replace("interval: 1m", "interval: 1s")
                     + "  - name: latency\n    objective: 0.99\n    interval: 1h\n    sli:\n"
                       "      histogram: {metric: request_latency_seconds, le: 2}\n")
    server = start_server("--rules", str(rules))

    def settled_health() -> dict[str, str] | None:
        """Rule health once every rule has had its first evaluation (the hourly latency
        group's first one runs at start-up, but may still be under way)."""
        health = {r["name"]: r["health"] for g in api_get(server, "/api/v1/rules")["groups"]
                  for r in g["rules"]}
        return None if "unknown" in health.values() else health

    # The hourly latency group's one evaluation of the test must see no data yet (else its
    # ticket fires too, by whether start-up or the export came first).
    before = wait_until(settled_health, message="every SLO rule evaluated once")
    now = time.time_ns()
    points = [({"case": str(i)}, now - (100 - i) * 10**9, 200000.0 if i == 7 else 3600.0)
              for i in range(100)]
    with grpc.insecure_channel(server.grpc) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.Export(gauge_request("case.processing_seconds", points, service="permits"),
                    timeout=10)
        stub.Export(histogram_request(now), timeout=10)
    slo, latency = wait_until(lambda: [s for s in api_get(server, "/api/v1/slos")["slos"]
                                       if s["total"] in (100, 200)], message="SLO status")
    assert latency == {"name": "latency", "objective": "0.99", "period": 2592000.0,
                       "errorBudget": "0.01", "group": "slo:latency", "source": str(rules),
                       "good": 185, "total": 200, "sli": "0.925", "budgetRemaining": "-6.5",
                       "error": None}
    assert slo == {"name": "cases", "objective": "0.995", "period": 2592000.0,
                   "errorBudget": "0.005", "group": "slo:cases", "source": str(rules), "good": 99,
                   "total": 100,
                   "sli": "0.99", "budgetRemaining": "-1", "error": None}
    # 1 % errors against a 0.5 % budget: burn 2 -- a ticket, not a page
    firing = wait_until(lambda: [a for a in api_get(server, "/api/v1/alerts")["alerts"]
                                 if a["state"] == "firing"], message="the ticket alert")
    assert [(a["alertname"], a["labels"]["severity"], a["value"]) for a in firing] == [
        ("CasesBurnRateTicket", "ticket", 2.0000000000000018)]

    assert before == settled_health() == {
        "CasesBurnRatePageFast": "ok", "CasesBurnRatePageSlow": "ok", "CasesBurnRateTicket": "ok",
        "LatencyBurnRatePageFast": "ok", "LatencyBurnRatePageSlow": "ok",
        "LatencyBurnRateTicket": "ok"}


POSTED = {
    "name": "processed-48h", "objective": "99%", "interval": "1s",
    "sli": {"good": "SELECT count(*) FILTER (WHERE Value < 172800) FROM otel_points "
                    "WHERE MetricName = 'case.processing_seconds' AND TimeUnix > window_start",
            "total": "SELECT count(*) FROM otel_points "
                     "WHERE MetricName = 'case.processing_seconds' AND TimeUnix > window_start"},
}


def test_slo_posted_over_http_is_validated_kept_and_deleted(start_server: StartServer,
                                                            tmp_path: Path) -> None:
    server = start_server()
    bad = {**POSTED, "objective": "120%"}
    assert api_request(server, "POST", "/api/v1/slos", bad) == (400, {
        "error": "POST /api/v1/slos: slo processed-48h.objective: must be a ratio like 99.9% "
                 "or 0.999 (got '120%')"})
    # every problem, one line each
    assert api_request(server, "POST", "/api/v1/slos", {**POSTED, "sli": {"good": "SELECT 1"}}
                       )[1]["error"].splitlines() == [
        "POST /api/v1/slos: slo processed-48h.sli.good: must filter on window_start, like "
        "TimeUnix > window_start",
        "POST /api/v1/slos: slo processed-48h.sli.total: must be a SELECT returning one number"]
    assert api_request(server, "POST", "/api/v1/slos", POSTED) == (
        201, {"status": "ok", "name": "processed-48h", "group": "slo:processed-48h"})
    (slo,) = api_get(server, "/api/v1/slos")["slos"]
    assert (slo["name"], slo["objective"], slo["source"]) == ("processed-48h", "0.99",
                                                              "POST /api/v1/slos")
    groups = [g["name"] for g in api_get(server, "/api/v1/rules")["groups"]]
    assert groups == ["slo:processed-48h"]

    assert server.stop() == 0  # kept in the store across a restart
    server = start_server()
    assert [s["name"] for s in api_get(server, "/api/v1/slos")["slos"]] == ["processed-48h"]
    wait_until(lambda: api_get(server, "/api/v1/rules")["groups"][0]["evaluations"] >= 1,
               message="the posted SLO's rules to run")
    health = {r["name"]: r["health"] for r in
              api_get(server, "/api/v1/rules")["groups"][0]["rules"]}
    assert health == {"Processed48hBurnRatePageFast": "ok", "Processed48hBurnRatePageSlow": "ok",
                      "Processed48hBurnRateTicket": "ok"}

    assert api_request(server, "DELETE", "/api/v1/slos/processed-48h") == (
        200, {"status": "ok", "name": "processed-48h"})
    assert api_get(server, "/api/v1/slos")["slos"] == []
    assert api_request(server, "DELETE", "/api/v1/slos/processed-48h")[0] == 404
