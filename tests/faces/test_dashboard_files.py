"""Dashboard YAML files: the example loads, every mistake of every file is found in one pass,
each one line naming file, panel and field; ``serve`` refuses a bad one with all of them; the
page, its assets and ``GET /api/v1/dashboards``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from otel_hms.dashboard import EXAMPLE_DASHBOARDS, DashboardError, load_dashboards
from otel_hms.dashboard.routes import CSP

from conftest import ROOT, StartServer, free_port

STATIC = ROOT / "otel_hms" / "dashboard" / "static"

GOOD = """\
title: Permits
range: 6h
panels:
  - title: p99 latency
    metric: request_latency_seconds
    agg: p99
    by: [route]
    where: {service.name: permits}
    unit: s
    thresholds:
      - {value: 2, color: red, label: "2 s"}
  - title: SLA
    type: stat
    sql: SELECT 1 AS Value
"""


def write(tmp_path: Path, text: str, name: str = "permits.yaml") -> Path:
    folder = tmp_path / "dashboards"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def problems_of(tmp_path: Path, text: str) -> tuple[str, ...]:
    with pytest.raises(DashboardError) as info:
        load_dashboards(write(tmp_path, text))
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def test_a_dashboard_file_parses_into_panels(tmp_path: Path) -> None:
    (dashboard,) = load_dashboards(write(tmp_path, GOOD))
    assert dashboard.to_json() == {
        "id": "permits", "title": "Permits", "range": "6h", "description": None,
        "file": "permits.yaml",
        "panels": [
            {"title": "p99 latency", "type": "chart", "metric": "request_latency_seconds",
             "agg": "p99", "by": ["route"], "where": {"service.name": "permits"}, "step": None,
             "sql": None, "unit": "s", "decimals": None, "description": None,
             "thresholds": [{"value": 2.0, "color": "red", "label": "2 s"}]},
            {"title": "SLA", "type": "stat", "metric": None, "agg": None, "by": [],
             "where": {}, "step": None, "sql": "SELECT 1 AS Value", "unit": None,
             "decimals": None, "description": None, "thresholds": []},
        ]}


def test_the_example_permits_dashboard_loads() -> None:
    (dashboard,) = load_dashboards(EXAMPLE_DASHBOARDS)
    assert dashboard.id == "permits"
    panels = {p.title: p for p in dashboard.panels}
    assert [(p.metric, p.agg) for p in dashboard.panels if p.metric] == [
        ("requests_processed_total", "increase"), ("request_latency_seconds", "p99"),
        ("active_connections", "last"), ("satisfaction_score", "avg")]
    assert panels["p99 latency"].thresholds[0].value == 2.0
    assert panels["p99 latency"].thresholds[0].color == "red"
    assert "sla_adherence('case_resolution_seconds', 172800" in str(
        panels["Cases resolved within 48 h"].sql)


@pytest.mark.parametrize(("text", "problems"), [
    (GOOD.replace("color: red", "color: pink"),
     ["permits.yaml: panels[0] (p99 latency).thresholds[0].color: must be one of red, amber, "
      "green, blue, grey (got 'pink')"]),
    (GOOD.replace("agg: p99", "agg: median"),
     ["permits.yaml: panels[0] (p99 latency).agg: must be one of avg, sum, min, max, count, "
      "last, rate, increase or pNN (p50, p90, p99) (got 'median')"]),
    (GOOD.replace("    unit: s\n", "    units: s\n"),
     ["permits.yaml: panels[0] (p99 latency): unknown field 'units'; known fields: title, "
      "type, metric, agg, by, where, step, sql, unit, decimals, thresholds, description"]),
    (GOOD.replace("range: 6h", "range: soon"),
     ["permits.yaml: range: must be a duration like 5m, 1h or 7d (got 'soon')"]),
    ("panels: [{title: x, metric: m}]\ntheme: dark\n",
     ["permits.yaml: unknown field 'theme'; known fields: title, description, range, panels"]),
    (GOOD.replace("    sql: SELECT 1 AS Value\n", "    sql: SELECT 1\n    metric: x\n"),
     ["permits.yaml: panels[1] (SLA): give either metric (with agg, by, where) or sql"]),
    (GOOD.replace("    sql: SELECT 1 AS Value\n", "    sql: SELECT 1\n    agg: avg\n"),
     ["permits.yaml: panels[1] (SLA).agg: only applies to metric panels; write it into the "
      "sql"]),
    (GOOD.replace("{value: 2,", "{value: two,"),
     ["permits.yaml: panels[0] (p99 latency).thresholds[0].value: must be a number (got "
      "'two')"]),
    (GOOD.replace("type: stat", "type: pie"),
     ["permits.yaml: panels[1] (SLA).type: must be one of chart, stat (got 'pie')"]),
    (GOOD.replace("  - title: SLA\n", "  - titel: SLA\n"),
     ["permits.yaml: panels[1]: unknown field 'titel'; known fields: title, type, metric, agg, "
      "by, where, step, sql, unit, decimals, thresholds, description",
      "permits.yaml: panels[1].title: is required"]),
    ("title: x\npanels: []\n", ["permits.yaml: panels: must be a non-empty list of panels"]),
    ("title: [unclosed\n", ["permits.yaml: not valid YAML at line 2: expected ',' or ']', but "
                            "got '<stream end>'"]),
    ("", ["permits.yaml: is empty; a dashboard needs a title and panels"]),
    ("- title: x\n", ["permits.yaml: must be a mapping (got list)"]),
    ("panels: [{title: x, metric: m}, 7]\n", ["permits.yaml: panels[1]: must be a mapping (got "
                                              "int)"]),
])
def test_every_mistake_is_one_line_naming_file_panel_and_field(tmp_path: Path, text: str,
                                                                problems: list[str]) -> None:
    assert list(problems_of(tmp_path, text)) == problems


BAD = """\
title: Permits
range: soon
colour: blue
panels:
  - title: p99 latency
    metric: request_latency_seconds
    agg: median
    by: [route]
    decimals: 12
    thresholds:
      - {value: two, color: pink}
      - {value: 3, colour: red}
  - title: SLA
    type: pie
    sql: SELECT 1 AS Value
    step: 5m
  - type: stat
"""


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    assert list(problems_of(tmp_path, BAD)) == [
        "permits.yaml: unknown field 'colour'; known fields: title, description, range, panels",
        "permits.yaml: range: must be a duration like 5m, 1h or 7d (got 'soon')",
        "permits.yaml: panels[0] (p99 latency).agg: must be one of avg, sum, min, max, count, "
        "last, rate, increase or pNN (p50, p90, p99) (got 'median')",
        "permits.yaml: panels[0] (p99 latency).decimals: must be a whole number 0-10 (got 12)",
        "permits.yaml: panels[0] (p99 latency).thresholds[0].value: must be a number (got "
        "'two')",
        "permits.yaml: panels[0] (p99 latency).thresholds[0].color: must be one of red, amber, "
        "green, blue, grey (got 'pink')",
        "permits.yaml: panels[0] (p99 latency).thresholds[1]: unknown field 'colour'; known "
        "fields: value, color, label",
        "permits.yaml: panels[1] (SLA).type: must be one of chart, stat (got 'pie')",
        "permits.yaml: panels[1] (SLA).step: only applies to metric panels; write it into the "
        "sql",
        "permits.yaml: panels[2].title: is required",
        "permits.yaml: panels[2]: give either metric (with agg, by, where) or sql",
    ]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    folder = write(tmp_path, GOOD.replace("color: red", "color: pink"))
    (folder / "cases.yaml").write_text("title: [unclosed\n")
    (folder / "permits.yml").write_text(GOOD)
    (folder / "slo.yaml").write_text("title: x\n")
    with pytest.raises(DashboardError) as info:
        load_dashboards(folder)
    assert info.value.problems == (
        "cases.yaml: not valid YAML at line 2: expected ',' or ']', but got '<stream end>'",
        "permits.yaml: panels[0] (p99 latency).thresholds[0].color: must be one of red, amber, "
        "green, blue, grey (got 'pink')",
        "slo.yaml: panels: must be a non-empty list of panels")


def test_two_files_with_one_id_and_a_missing_directory_are_errors(tmp_path: Path) -> None:
    folder = write(tmp_path, GOOD)
    (folder / "permits.yml").write_text(GOOD)
    with pytest.raises(DashboardError, match=r"^permits.yml: the dashboard id 'permits' is also "
                       r"used by permits.yaml; rename one$"):
        load_dashboards(folder)
    with pytest.raises(DashboardError, match=r"^--dashboards: no such directory"):
        load_dashboards(tmp_path / "nowhere")


def test_serve_stops_on_a_bad_dashboard_with_one_line_per_problem(tmp_path: Path) -> None:
    folder = write(tmp_path, GOOD.replace("color: red", "color: pink")
                   .replace("type: stat", "type: pie"))
    ports = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    result = subprocess.run(
        [sys.executable, "-m", "otel_hms", "serve", "--db", str(tmp_path / "s.duckdb"),
         "--otlp-grpc", ports[0], "--otlp-http", ports[1], "--api", ports[2],
         "--dashboards", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == ("Error: permits.yaml: panels[0] (p99 latency).thresholds[0].color: "
                             "must be one of red, amber, green, blue, grey (got 'pink')\n"
                             "Error: permits.yaml: panels[1] (SLA).type: must be one of chart, "
                             "stat (got 'pie')\n")


def get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_page_assets_and_dashboards_endpoint(start_server: StartServer, tmp_path: Path) -> None:
    folder = write(tmp_path, GOOD)
    server = start_server("--dashboards", str(folder), "--auth-token", "s3cret")
    base = f"http://{server.api}"
    status, headers, body = get(base + "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CSP
    assert b'<script type="module" src="/static/app.js">' in body
    for name, kind in (("app.js", "text/javascript; charset=utf-8"),
                       ("chart.js", "text/javascript; charset=utf-8"),
                       ("app.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")):
        status, headers, _ = get(f"{base}/static/{name}")
        assert (status, headers["content-type"]) == (200, kind), name
    assert get(base + "/static/nothing.js")[0] == 404
    paths = json.loads(get(base + "/api/v1/openapi.json")[2])["paths"]
    assert {"/", "/api/v1/dashboards"} <= set(paths)

    status, headers, body = get(base + "/api/v1/dashboards")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="otel-hms"'
    status, _, body = get(base + "/api/v1/dashboards", "s3cret")
    listing = json.loads(body)
    assert status == 200 and listing["errors"] == []
    assert [d["id"] for d in listing["dashboards"]] == ["permits"]
    assert listing["dashboards"][0]["panels"][0]["thresholds"] == [
        {"value": 2.0, "color": "red", "label": "2 s"}]

    # Edited files show on the next request; a broken one is reported, the others still load.
    (folder / "broken.yaml").write_text("title: x\nrange: soon\n")
    listing = json.loads(get(base + "/api/v1/dashboards", "s3cret")[2])
    assert [d["id"] for d in listing["dashboards"]] == ["permits"]
    assert listing["errors"] == ["broken.yaml: range: must be a duration like 5m, 1h or 7d "
                                 "(got 'soon')",
                                 "broken.yaml: panels: must be a non-empty list of panels"]


def test_no_page_asset_loads_anything_from_elsewhere() -> None:
    names = sorted(p.name for p in STATIC.iterdir())
    assert names == ["alerts.js", "api.js", "app.css", "app.js", "cardinality.js", "chart.js",
                     "clock.js", "dashboards.js", "dom.js", "explore.js", "favicon.svg",
                     "format.js", "index.html", "live.js", "panels.js", "ranges.js",
                     "sqlconsole.js"]
    for path in STATIC.iterdir():
        text = path.read_text()
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, never fetched
        assert not re.search(r"https?://|//[a-z0-9-]+\.[a-z]{2,}/|@import|url\(", text), path.name


def test_readme_dashboard_example_matches_the_shipped_file() -> None:
    readme = (STATIC.parents[2] / "README.md").read_text()
    shipped = (EXAMPLE_DASHBOARDS / "permits.yaml").read_text()
    block = readme.split("```yaml\n# otel_hms/demo/dashboards/permits.yaml\n", 1)[1]
    assert block.split("```", 1)[0] == shipped
