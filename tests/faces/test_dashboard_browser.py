"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
``otel-hms serve`` gets metrics over OTLP, the page charts the values sent, follows new points
live, shows a firing alert, renders the example YAML dashboard and runs SQL; the browser
console stays free of errors.  Screenshots (1366×768) go to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from playwright.sync_api import Browser, Page, sync_playwright

from otel_hms.dashboard import EXAMPLE_DASHBOARDS

from conftest import ROOT, ServerProcess, StartServer, wait_until
from metric_builders import (
    CUMULATIVE,
    DELTA,
    T0_S,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    sum_metric,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed: apt-get install chromium (scripts/test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    page: Page
    errors: list[str] = field(default_factory=list)

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def shot(self, name: str, full_page: bool = False) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=full_page)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(20_000)
    t = Tab(page)
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.errors.append(f"uncaught: {e}"))
    yield t
    context.close()


def send(server: ServerProcess, *metrics: metrics_pb2.Metric, service: str = "shop") -> None:
    """One OTLP/HTTP protobuf export."""
    server.export(request(*metrics, service=service), timeout=10)


def ago(seconds: float) -> float:
    """A time ``seconds`` before now, in the builders' seconds-after-T0."""
    return time.time() - T0_S - seconds


def latency(points: list[tuple[dict[str, str], float, float]]) -> metrics_pb2.Metric:
    metric = gauge_metric("checkout.latency", [number_point(a, t, v) for a, t, v in points])
    metric.unit, metric.description = "s", "Time from basket to paid"
    return metric


def explore_values(tab: Tab) -> list[tuple[str, list[float]]]:
    series = tab.js("() => (window.otelHms.views.explore.chart?.view.series || [])"
                    ".map(s => [s.label, s.points.filter(p => p[1] !== null).map(p => p[1])])")
    return [(label, values) for label, values in series]


def test_explore_charts_the_sent_values_and_follows_them_live(start_server: StartServer,
                                                               tab: Tab) -> None:
    server = start_server()
    apply = {"route": "/apply"}
    send(server, latency([(apply, ago(40), 0.25), (apply, ago(30), 1.5), (apply, ago(20), 0.75)]))
    send(server, gauge_metric("queue.depth", [number_point({}, ago(10), 3.0)]))
    page = tab.page
    page.goto(f"http://{server.api}/")
    page.wait_for_selector('button[data-metric="queue.depth"]')
    page.fill("#metric-search", "basket")  # matches the description, not the name
    items = page.locator(".metric-item")
    wait_until(lambda: items.count() == 1, message="search to filter the list")
    assert items.inner_text().split("\n") == ["checkout.latency", "gauge", "s", "1 series",
                                              "Time from basket to paid"]
    items.click()
    page.select_option("#range", "5m")
    page.locator("fieldset.by label", has_text="route").click()  # group by route
    wait_until(lambda: explore_values(tab) == [("route=/apply", [0.25, 1.5, 0.75])],
               message="the sent values on the chart")
    legend = page.locator(".legend-item")
    assert legend.inner_text().split("\n") == ["route=/apply", "750 ms"]
    assert page.locator("#chart-title").inner_text() == "checkout.latency"
    assert "step 1 s · from raw points" in page.locator(".chart-meta").inner_text()

    # Live: a new point arrives over OTLP and the same page (no reload) draws it.
    tab.js("() => { window.__same_page = true; }")
    sent_at = time.time()
    send(server, latency([(apply, ago(0), 2.5)]))
    wait_until(lambda: explore_values(tab) == [("route=/apply", [0.25, 1.5, 0.75, 2.5])],
               message="the live point on the chart")
    assert legend.inner_text().split("\n") == ["route=/apply", "2.5 s"]
    assert tab.js("() => window.__same_page") is True

    # Pause closes the stream; resume fetches what arrived meanwhile.
    page.click("#live-toggle")
    assert page.locator("#live-state").inner_text() == "❚❚ Paused"
    assert page.locator("#live-toggle").inner_text() == "Resume"
    wait_until(lambda: tab.js("() => window.otelHms.live.openStreams()") == 0,
               message="the stream to close")
    # The chart's buckets are 1 s wide: the next point goes into the next one.
    wait_until(lambda: time.time() > sent_at + 1.1, message="the next 1 s bucket")
    send(server, latency([(apply, ago(0), 4.0)]))
    page.keyboard.press("p")  # the keyboard shortcut resumes too
    wait_until(lambda: explore_values(tab) == [("route=/apply", [0.25, 1.5, 0.75, 2.5, 4.0])],
               message="the point sent while paused, after resume")
    assert page.locator("#live-state").inner_text() == "● Live"

    # Hover and keyboard read values; the table view lists them.
    box = page.locator(".chart-canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    tooltip = page.locator(".chart-tooltip")
    wait_until(lambda: tooltip.is_visible(), message="the hover tooltip")
    assert tooltip.locator(".tooltip-row").inner_text().split("\n") == ["route=/apply", "4 s"]
    page.mouse.move(0, 0)
    page.locator(".chart-canvas").focus()
    page.keyboard.press("Home")
    assert tooltip.locator(".tooltip-value").inner_text() == "250 ms"
    page.keyboard.press("ArrowRight")
    assert tooltip.locator(".tooltip-value").inner_text() == "1.5 s"
    page.keyboard.press("Escape")
    page.click("#table-toggle")
    cells = page.locator(".chart-table td").evaluate_all("tds => tds.map(td => td.dataset.value)")
    assert cells == ["4", "2.5", "0.75", "1.5", "0.25"]
    page.locator(".chart-canvas").focus()
    page.keyboard.press("End")
    tab.shot("explore")
    assert tab.errors == []


def test_the_keyboard_alone_reaches_a_chart(start_server: StartServer, tab: Tab) -> None:
    server = start_server()
    apply = {"route": "/apply"}
    send(server, latency([(apply, ago(30), 0.5), (apply, ago(20), 1.0)]))
    page = tab.page
    page.goto(f"http://{server.api}/")
    page.wait_for_selector(".metric-item")
    page.keyboard.press("Tab")  # the skip link comes first
    assert tab.js("() => document.activeElement.textContent") == "Skip to content"
    page.focus("#metric-search")
    page.keyboard.type("checkout")
    page.keyboard.press("Tab")
    assert tab.js("() => document.activeElement.dataset.metric") == "checkout.latency"
    page.keyboard.press("Enter")
    page.wait_for_selector(".legend-item")
    page.focus('fieldset.by input[value="route"]')
    page.keyboard.press("Space")
    wait_until(lambda: explore_values(tab) == [("route=/apply", [0.5, 1.0])],
               message="the chart grouped by route, chosen with the keyboard")
    page.focus(".legend-item")
    page.keyboard.press("Enter")  # hides the series; the legend says so
    assert page.locator(".legend-item").get_attribute("aria-pressed") == "false"
    assert tab.errors == []


def test_a_browser_clock_minutes_ahead_still_shows_the_points(start_server: StartServer,
                                                               tab: Tab) -> None:
    """The demo's p99 showed "No data in this range" while /api/v1/query had its points: the
    live window moved by the browser's clock, and one 10 minutes ahead of the server's
    dropped every point of "the last 5 minutes" at the window's first move (after 5 s).
    The window follows the server's clock (``now_ms`` in its answers) instead."""
    server = start_server()
    apply = {"route": "/apply"}
    send(server, histogram_metric("request_latency_seconds", [
        histogram_point(apply, ago(60), [0.5, 1, 2, 5], [0, 0, 0, 10, 0], start=ago(70)),
        histogram_point(apply, ago(30), [0.5, 1, 2, 5], [10, 0, 0, 0, 0], start=ago(60)),
    ], DELTA), service="permits")
    page = tab.page
    page.clock.install(time=time.time() + 600)  # this browser's clock: 10 minutes ahead
    page.clock.resume()
    page.goto(f"http://{server.api}/#/explore?metric=request_latency_seconds&agg=p99&by=route"
              "&range=5m")
    # p99: 2 s + 0.99 of the (2, 5] bucket, then 0.99 of the [0, 0.5] one
    answer = [("route=/apply", [4.97, 0.495])]
    wait_until(lambda: explore_values(tab) == answer, message="the p99 points on the chart")
    page.clock.run_for(11_000)  # two moves of the live window
    assert explore_values(tab) == answer
    assert page.locator(".chart-empty").is_hidden()
    assert tab.errors == []


def test_the_range_follows_the_data_and_the_address(start_server: StartServer,
                                                    tab: Tab) -> None:
    """Without a chosen range a chart spans the data (two minutes of points fill it instead
    of an hour squeezing them to the right edge); ``?range=`` in the address sets it."""
    server = start_server("--dashboards", str(EXAMPLE_DASHBOARDS))
    permits_data(server)  # the first point is 90 s old: whole minutes, 2m
    page = tab.page
    page.goto(f"http://{server.api}/#/dashboards/permits")
    page.wait_for_selector("article.panel")
    views = "window.otelHms.views.dashboards.panels"

    def ranges() -> list[Any]:
        return tab.js(f"() => {views}.map(p => p.params ? p.params.range : p.rangeSeconds)")

    assert page.locator("#dashboard-range").input_value() == "2m"
    assert ranges() == ["2m", "2m", "2m", "2m", 120, 120]
    assert tab.js("() => location.hash") == "#/dashboards/permits"

    page.select_option("#dashboard-range", "6h")  # a choice goes into the address
    wait_until(lambda: tab.js("() => location.hash") == "#/dashboards/permits?range=6h",
               message="the chosen range in the address")
    assert ranges() == ["6h"] * 4 + [21600] * 2

    tab.js("() => { location.hash = '#/dashboards/permits?range=15m'; }")  # an edited link
    wait_until(lambda: page.locator("#dashboard-range").input_value() == "15m",
               message="the address's range in the picker")
    assert ranges() == ["15m"] * 4 + [900] * 2
    page.goto(f"http://{server.api}/#/dashboards/permits?range=90s")  # any duration
    page.wait_for_selector("article.panel")
    assert page.locator("#dashboard-range").input_value() == "90s"
    assert ranges() == ["90s"] * 4 + [90] * 2

    page.goto(f"http://{server.api}/#/explore?metric=satisfaction_score")  # 20 s of points
    page.wait_for_selector(".legend-item")
    assert page.locator("#range").input_value() == "1m"
    assert tab.js("() => window.otelHms.views.explore.chart.params.range") == "1m"
    assert "range=" not in tab.js("() => location.hash")  # a default is not pinned
    page.goto(f"http://{server.api}/#/explore?metric=satisfaction_score&range=15m")
    page.wait_for_selector(".legend-item")
    assert page.locator("#range").input_value() == "15m"
    assert tab.js("() => window.otelHms.views.explore.chart.params.range") == "15m"
    assert "range=15m" in tab.js("() => location.hash")
    assert tab.errors == []


RULES = """\
groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: SlowCheckout
        sql: |
          SELECT Attributes['route'] AS route, arg_max(Value, TimeUnix) AS value
          FROM otel_metrics_gauge
          WHERE MetricName = 'checkout.latency' AND TimeUnix > now() - INTERVAL 5 MINUTE
          GROUP BY ALL
        condition: value > 2
        labels: {severity: critical}
        annotations: {summary: "checkout takes {{ value }} s on {{ labels.route }}"}
slos:
  - name: checkout-ok
    objective: 98%
    sli:
      good: SELECT 99 WHERE window_start < now()
      total: SELECT 100 WHERE window_start < now()
"""


def test_a_firing_alert_rule_health_and_slo_budget_show(start_server: StartServer,
                                                        tab: Tab, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    server = start_server("--rules", str(rules))
    page = tab.page
    page.goto(f"http://{server.api}/#/alerts")
    page.wait_for_selector("#rules-table")
    send(server, latency([({"route": "/apply"}, ago(1), 3.5), ({"route": "/pay"}, ago(1), 1.0)]))
    row = page.locator('#alerts-table tr[data-alertname="SlowCheckout"]')
    wait_until(lambda: row.count() == 1 and row.get_attribute("data-state") == "firing",
               message="the firing alert on the alerts view")
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "▲\nFiring"  # an icon and a word, not colour alone
    assert cells[1:5] == ["SlowCheckout", "route=/apply\nseverity=critical", "3.5",
                          cells[4]] and cells[4].endswith("s ago")
    assert cells[5] == "checkout takes 3.5 s on /apply"
    assert page.locator("#alert-badge").inner_text() == "1 firing"

    rules_rows = page.locator("#rules-table tbody tr")
    firsts = [rules_rows.nth(i).locator("td").all_inner_texts()[:4]
              for i in range(rules_rows.count())]
    assert firsts[0] == ["checkout", "SlowCheckout", "✓\nOK", "–"]
    assert [f[1] for f in firsts[1:]] == ["CheckoutOkBurnRatePageFast",
                                          "CheckoutOkBurnRatePageSlow",
                                          "CheckoutOkBurnRateTicket"]
    slo = page.locator("#slos-table tbody tr").first.locator("td").all_inner_texts()
    assert slo[:6] == ["checkout-ok", "98 %", "99 %", "99 / 100", "50 %", "✓\nwithin budget"]
    tab.shot("alerts")
    assert tab.errors == []


def permits_data(server: ServerProcess) -> None:
    """The parking-permit scenario's metrics, with values whose answers are known."""
    apply = {"route": "/apply"}
    start = ago(100)  # one start time: a new one would be a counter reset
    send(server,
         sum_metric("requests_processed_total",
                    [number_point({**apply, "status": "200"}, ago(90), 10, start=start),
                     number_point({**apply, "status": "200"}, ago(30), 40, start=start)]),
         sum_metric("active_connections", [number_point(apply, ago(20), 7, start=start)],
                    CUMULATIVE, monotonic=False),
         histogram_metric("request_latency_seconds",
                          [histogram_point(apply, ago(30), [0.5, 1, 2, 5], [0, 0, 0, 10, 0],
                                           start=ago(60))], DELTA),
         service="permits")
    send(server,
         gauge_metric("satisfaction_score", [number_point({"channel": "web"}, ago(20), 4.5),
                                             number_point({"channel": "phone"}, ago(20), 3.5)]),
         histogram_metric("case_resolution_seconds",
                          [histogram_point({}, ago(30), [3600, 86400, 172800, 604800],
                                           [1, 5, 3, 1, 0], start=ago(60))], DELTA),
         service="case-management")


def panel(tab: Tab, title: str) -> Any:
    return tab.page.locator("article.panel", has=tab.page.get_by_role("heading", name=title))


def test_the_example_permits_dashboard_renders_live_panels(start_server: StartServer,
                                                           tab: Tab) -> None:
    server = start_server("--dashboards", str(EXAMPLE_DASHBOARDS))
    permits_data(server)
    page = tab.page
    page.goto(f"http://{server.api}/#/dashboards")
    page.wait_for_selector("article.panel")
    assert page.locator("h1").inner_text() == "Parking permits"
    titles = page.locator("article.panel h2").all_inner_texts()
    assert titles == ["Requests per minute", "p99 latency", "Active connections",
                      "Citizen satisfaction", "Cases resolved within 48 h",
                      "SLA adherence over time"]

    def legend(title: str) -> list[str]:
        return panel(tab, title).locator(".legend-item").all_inner_texts()

    wait_until(lambda: legend("p99 latency") == ["route=/apply\n4.97 s"],
               message="p99 latency (2 s + 0.99 of the (2, 5] bucket)")
    wait_until(lambda: legend("Active connections") == ["route=/apply\n7"],
               message="active connections")
    wait_until(lambda: legend("Citizen satisfaction") == ["channel=phone\n3.50",
                                                          "channel=web\n4.50"],
               message="satisfaction per channel")
    views = "window.otelHms.views.dashboards.panels"
    requests = tab.js(f"() => {views}[0].view.series.map(s => [s.label, s.points"
                      ".reduce((a, p) => a + (p[1] || 0), 0)])")
    assert requests == [["route=/apply", 40]]  # 10 at start, then 30 more: per-minute buckets
    assert tab.js(f"() => {views}[1].view.options.thresholds") == [
        {"value": 2, "color": "red", "label": "2 s objective"}]
    stat = panel(tab, "Cases resolved within 48 h")
    wait_until(lambda: stat.locator(".stat-value").count() == 1, message="the SLA stat")
    assert stat.locator(".stat-value").inner_text() == "90.0 %"  # 9 of 10 cases within 48 h
    assert stat.locator(".status").inner_text() == "▲\nSLA missed"
    wait_until(lambda: legend("SLA adherence over time") == ["Value\n90 %"],
               message="SLA adherence chart")
    tab.shot("permits")
    assert tab.errors == []


def test_sql_console_shows_a_table_a_chart_and_refusals(start_server: StartServer,
                                                        tab: Tab) -> None:
    server = start_server()
    apply = {"route": "/apply"}
    send(server, latency([(apply, ago(30), 0.5), (apply, ago(20), 1.0)]))
    page = tab.page
    page.goto(f"http://{server.api}/#/sql")
    page.fill("#sql-input", "SELECT Attributes['route'] AS route, TimeUnix, Value "
                            "FROM otel_metrics_gauge ORDER BY TimeUnix")
    page.locator("#sql-input").press("Control+Enter")
    page.wait_for_selector("#sql-result")
    rows = page.locator("#sql-result tbody tr").all_inner_texts()
    assert [r.split("\t")[::2] for r in rows] == [["/apply", "0.5"], ["/apply", "1"]]
    assert page.locator("#sql-status").inner_text().startswith("2 rows in ")
    page.click("#sql-as-chart")
    page.wait_for_selector(".sql-out .chart-canvas")
    series = tab.js("() => window.otelHms.views.sql.chart.series.map(s => [s.label, "
                    "s.points.map(p => p[1])])")
    assert series == [["route=/apply", [0.5, 1.0]]]
    tab.shot("sql")
    assert tab.errors == []
    page.fill("#sql-input", "DELETE FROM series")
    page.click("#sql-run")
    error = page.locator(".sql-out .error-box")
    error.wait_for()
    assert error.inner_text() == ("✕ only read-only SELECT queries are allowed here (got DELETE); "
                                  "the store is written by the receiver alone")
    # The browser logs the refused request itself; the page raised nothing.
    assert tab.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"]


def test_behind_the_bearer_token_the_page_asks_for_it(start_server: StartServer,
                                                      tab: Tab) -> None:
    server = start_server("--auth-token", "s3cret")
    server.token = "s3cret"
    send(server, gauge_metric("queue.depth", [number_point({}, ago(10), 3.0)]))
    page = tab.page
    page.goto(f"http://{server.api}/")
    dialog = page.locator("#token-dialog")
    dialog.wait_for()
    assert page.locator("#metric-list .metric-item").count() == 0
    tab.shot("token-dialog")
    page.fill("#token-input", "s3cret")
    page.keyboard.press("Enter")
    page.wait_for_selector('button[data-metric="queue.depth"]')
    assert not dialog.is_visible()
    tab.shot("token-accepted")
    # The one error is the browser logging the first, token-less request's 401.
    assert {e for e in tab.errors} <= {
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"}



def test_the_cardinality_view_shows_the_big_metric_its_labels_and_refusals(
        start_server: StartServer, tab: Tab) -> None:
    server = start_server("--max-series-per-metric", "4")
    users = [{"route": "/pay", "user.id": f"u{i}"} for i in range(6)]
    send(server, gauge_metric("http.server.duration",
                              [number_point(a, ago(20), 0.5) for a in users[:4]]))
    send(server, gauge_metric("http.server.duration",  # two new series past the limit
                              [number_point(a, ago(10), 0.5) for a in users[4:]]))
    send(server, gauge_metric("queue.depth", [number_point({"queue": q}, ago(10), 1.0)
                                              for q in ("a", "b")]))
    page = tab.page
    page.goto(f"http://{server.api}/#/cardinality")

    def rows(table: str) -> list[list[str]]:
        return [[c.strip() for c in r.split("\t")]
                for r in page.locator(f"#{table} tbody tr").all_inner_texts()]

    page.wait_for_selector("#cardinality-metrics tbody tr")
    assert rows("cardinality-summary") == [
        ["series", "6", "1M", "0.0006 %"],
        ["series of the largest metric", "4", "4", "100 %"]]
    assert rows("cardinality-metrics") == [
        ["http.server.duration", "4", "66.67 %", "100 %", "2 points, 2 series"],
        ["queue.depth", "2", "33.33 %", "50 %", "–"]]
    assert rows("cardinality-labels") == [
        ["user.id", "point", "4", "4"], ["queue", "point", "2", "2"],
        ["service.name", "resource", "1", "6"], ["route", "point", "1", "4"]]
    assert rows("cardinality-refused") == [["http.server.duration", "2", "2"]]
    meter = page.locator('#cardinality-metrics [role="meter"]').first
    assert (meter.get_attribute("aria-valuenow"), meter.get_attribute("class")) == (
        "100", "budget budget-red")
    assert page.locator(".cardinality .status").inner_text() == (
        "▲\n2 new series refused since start")
    tab.shot("cardinality")

    page.click('#cardinality-metrics button[data-metric="http.server.duration"]')
    wait_until(lambda: page.url.endswith("#/cardinality?metric=http.server.duration"),
               message="the address to name the metric")
    wait_until(lambda: rows("cardinality-labels") == [
        ["user.id", "point", "4", "4"], ["route", "point", "1", "4"],
        ["service.name", "resource", "1", "4"]], message="its labels alone")
    assert rows("cardinality-metrics") == [
        ["http.server.duration", "4", "66.67 %", "100 %", "2 points, 2 series"]]
    assert rows("cardinality-pairs")[0] == ["route=/pay", "4"]
    page.click("#cardinality-all")
    wait_until(lambda: len(rows("cardinality-metrics")) == 2, message="every metric again")
    assert page.url.endswith("#/cardinality")
    assert tab.errors == []
