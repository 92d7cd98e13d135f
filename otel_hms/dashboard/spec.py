"""Dashboard files: YAML parsed and validated into frozen value types.

A dashboard is one YAML file (its id is the file name without ``.yaml``) with a ``title``, a
default ``range`` and ``panels``; a panel asks the query API (``metric``, ``agg``, ``by``,
``where``, ``step``) or runs one read-only ``sql`` query, and may draw ``thresholds``.  The
fields are read by the rules files' reader (``common.yaml_fields``), so every problem of every
file is found in one pass, each one line naming the file, the panel and the field, e.g.
``permits.yaml: panels[1] (p99 latency).thresholds[0].color: must be one of red, amber, green,
blue, grey (got 'pink')``; ``DashboardError`` carries them all.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from otel_hms.common.yaml_fields import Fields
from otel_hms.common.yaml_file import YamlFileError, read_yaml
from otel_hms.config import ConfigError
from otel_hms.query.spec import (
    COUNTER_AGGS,
    NUMBER_AGGS,
    QUANTILE_AGG,
    QueryParamError,
    parse_duration,
)

COLORS = ("red", "amber", "green", "blue", "grey")
PANEL_TYPES = ("chart", "stat")
_DASHBOARD_FIELDS = ("title", "description", "range", "panels")
_PANEL_FIELDS = ("title", "type", "metric", "agg", "by", "where", "step", "sql", "unit",
                 "decimals", "thresholds", "description")
_THRESHOLD_FIELDS = ("value", "color", "label")
AGG_HELP = "avg, sum, min, max, count, last, rate, increase or pNN (p50, p90, p99)"


class DashboardError(ConfigError):
    """Dashboard files cannot be used; one line per problem (``problems``) names the file,
    the panel and the field."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Threshold:
    """A line on a chart (and the colour of a stat at or above ``value``)."""

    value: float
    color: str
    label: str | None = None


@dataclass(frozen=True)
class Panel:
    """One chart or stat: a query API question (``metric``) or one SQL query (``sql``)."""

    title: str
    type: str = "chart"
    metric: str | None = None
    agg: str | None = None
    by: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()
    step: str | None = None
    sql: str | None = None
    unit: str | None = None
    decimals: int | None = None
    thresholds: tuple[Threshold, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class Dashboard:
    id: str
    title: str
    range: str
    panels: tuple[Panel, ...]
    file: str
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["panels"] = [{**panel, "by": list(panel["by"]), "where": dict(panel["where"]),
                          "thresholds": list(panel["thresholds"])} for panel in out["panels"]]
        return out


def _duration(f: Fields, key: str) -> str | None:
    value: str | None = f.text(key)
    if value is not None:
        try:
            parse_duration(value, key)
        except QueryParamError:
            f.fail(key, f"must be a duration like 5m, 1h or 7d (got {value!r})")
            return None
    return value


def _number(f: Fields, key: str) -> float:
    value = f.raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        f.fail(key, f"must be a number (got {value!r})")
        return 0.0
    return float(value)


def _threshold(raw: Any, where: str, problems: list[str]) -> Threshold | None:
    before = len(problems)
    f = Fields(raw, where, _THRESHOLD_FIELDS, problems)
    if not f.whole:
        return None
    value = _number(f, "value")
    color = (f.text("color") or "red").lower()
    if color not in COLORS:
        f.fail("color", f"must be one of {', '.join(COLORS)} (got {color!r})")
    threshold = Threshold(value=value, color=color, label=f.text("label"))
    return threshold if len(problems) == before else None


def _agg(f: Fields) -> str | None:
    agg: str | None = f.text("agg")
    if agg is None:
        return None
    agg = agg.lower()
    if agg not in NUMBER_AGGS and agg not in COUNTER_AGGS and not QUANTILE_AGG.match(agg):
        f.fail("agg", f"must be one of {AGG_HELP} (got {agg!r})")
        return None
    return agg


def _by(f: Fields) -> tuple[str, ...]:
    value = f.raw.get("by")
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        f.fail("by", f"must be a list of attribute keys (got {value!r})")
        return ()
    return tuple(v.strip() for v in items)


def _where(f: Fields) -> tuple[tuple[str, str], ...]:
    value = f.raw.get("where")
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value) \
            or any(isinstance(v, dict | list) or v is None for v in value.values()):
        f.fail("where", f"must map attribute keys to values, e.g. {{route: /apply}} "
                        f"(got {value!r})")
        return ()
    return tuple((k.strip(), str(v)) for k, v in value.items())


def _decimals(f: Fields) -> int | None:
    decimals = f.raw.get("decimals")
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int)
                                 or not 0 <= decimals <= 10):
        f.fail("decimals", f"must be a whole number 0-10 (got {decimals!r})")
        return None
    return decimals


def _panel(raw: Any, where: str, problems: list[str]) -> Panel | None:
    """The panel at ``where``, or None when it has problems (each noted in ``problems``)."""
    before = len(problems)
    title = raw.get("title") if isinstance(raw, dict) else None
    if isinstance(title, str) and title.strip():
        where = f"{where} ({title.strip()})"
    f = Fields(raw, where, _PANEL_FIELDS, problems)
    if not f.whole:
        return None
    title = f.text("title", required=True)
    kind = (f.text("type") or "chart").lower()
    if kind not in PANEL_TYPES:
        f.fail("type", f"must be one of {', '.join(PANEL_TYPES)} (got {kind!r})")
    metric, sql = f.text("metric"), f.text("sql")
    if (f.raw.get("metric") is None) == (f.raw.get("sql") is None):
        problems.append(f"{where}: give either metric (with agg, by, where) or sql")
    if sql is not None:
        for key in ("agg", "by", "where", "step"):
            if key in f.raw:
                f.fail(key, "only applies to metric panels; write it into the sql")
    agg, by, where_, step = _agg(f), _by(f), _where(f), _duration(f, "step")
    unit, decimals = f.text("unit"), _decimals(f)
    thresholds_raw = f.raw.get("thresholds") or []
    if not isinstance(thresholds_raw, list):
        f.fail("thresholds", "must be a list of {value, color, label}")
        thresholds_raw = []
    thresholds = [_threshold(t, f"{where}.thresholds[{i}]", problems)
                  for i, t in enumerate(thresholds_raw)]
    panel = Panel(
        title=str(title), type=kind, metric=metric, agg=agg, by=by, where=where_, step=step,
        sql=sql, unit=unit, decimals=decimals, description=f.text("description"),
        thresholds=tuple(t for t in thresholds if t is not None))
    return panel if len(problems) == before else None


def _dashboard(doc: Any, name: str, dashboard_id: str, problems: list[str]) -> Dashboard | None:
    """The dashboard of one parsed YAML document, or None with its problems noted."""
    if doc is None:
        problems.append(f"{name}: is empty; a dashboard needs a title and panels")
        return None
    before = len(problems)
    f = Fields(doc, name, _DASHBOARD_FIELDS, problems, top=True)
    if not f.whole:
        return None
    title, description = f.text("title") or dashboard_id, f.text("description")
    range_ = _duration(f, "range") or "1h"
    panels_raw = f.raw.get("panels")
    if not isinstance(panels_raw, list) or not panels_raw:
        f.fail("panels", "must be a non-empty list of panels")
        panels_raw = []
    panels = [_panel(p, f"{name}: panels[{i}]", problems) for i, p in enumerate(panels_raw)]
    if len(problems) > before:
        return None
    return Dashboard(id=dashboard_id, title=title, range=range_, description=description,
                     file=name, panels=tuple(p for p in panels if p is not None))


def parse_dashboard(doc: Any, name: str, dashboard_id: str) -> Dashboard:
    """A parsed YAML document as a Dashboard; ``name`` starts every problem's line, and
    ``DashboardError`` carries every problem of the document."""
    problems: list[str] = []
    dashboard = _dashboard(doc, name, dashboard_id, problems)
    if dashboard is None:
        raise DashboardError(*problems)
    return dashboard


def _file(path: Path, problems: list[str]) -> Dashboard | None:
    try:
        doc = read_yaml(str(path), "dashboard file")
    except YamlFileError as exc:
        problems.append(f"{path.name}: {exc}")
        return None
    return _dashboard(doc, path.name, path.stem, problems)


def load_dashboard(path: Path) -> Dashboard:
    """One dashboard file; ``DashboardError`` carries every problem of the file."""
    problems: list[str] = []
    dashboard = _file(path, problems)
    if dashboard is None:
        raise DashboardError(*problems)
    return dashboard


def dashboard_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files of ``directory``, sorted by name."""
    root = Path(directory)
    if not root.is_dir():
        raise DashboardError(f"--dashboards: no such directory {str(directory)!r}; give a "
                             "directory of dashboard YAML files")
    return sorted(p for p in root.iterdir()
                  if p.suffix in (".yaml", ".yml") and p.is_file())


def load_dashboards(directory: str | os.PathLike[str] | None) -> list[Dashboard]:
    """Every dashboard of ``directory`` (none when it is None); ``DashboardError`` carries
    every problem of every file, so one run shows them all."""
    if directory is None:
        return []
    problems: list[str] = []
    out: dict[str, Dashboard] = {}
    for path in dashboard_files(directory):
        dashboard = _file(path, problems)
        if dashboard is None:
            continue
        if dashboard.id in out:
            problems.append(f"{path.name}: the dashboard id {dashboard.id!r} is also "
                            f"used by {out[dashboard.id].file}; rename one")
            continue
        out[dashboard.id] = dashboard
    if problems:
        raise DashboardError(*problems)
    return list(out.values())
