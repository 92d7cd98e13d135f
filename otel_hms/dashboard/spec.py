"""Dashboard files: YAML parsed and validated into frozen value types.

A dashboard is one YAML file (its id is the file name without ``.yaml``) with a ``title``, a
default ``range`` and ``panels``; a panel asks the query API (``metric``, ``agg``, ``by``,
``where``, ``step``) or runs one read-only ``sql`` query, and may draw ``thresholds``.  Every
problem is a ``DashboardError`` whose one line names the file, the panel and the field, e.g.
``permits.yaml: panels[1] (p99 latency).thresholds[0].color: must be one of red, amber, green,
blue, grey (got 'pink')``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
    """A dashboard file is wrong; the message names the file, the panel and the field."""


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


class _Fields:
    """A mapping being read, with the path used in error messages."""

    def __init__(self, raw: Any, where: str, known: tuple[str, ...], top: bool = False) -> None:
        if not isinstance(raw, dict):
            raise DashboardError(f"{where}: must be a mapping (got {type(raw).__name__})")
        unknown = [str(k) for k in raw if k not in known]
        if unknown:
            raise DashboardError(f"{where}: unknown field {unknown[0]!r}; known fields: "
                                 + ", ".join(known))
        self.raw, self.where, self.top = raw, where, top

    def error(self, key: str, message: str) -> DashboardError:
        # "permits.yaml: range: …" at the top, "permits.yaml: panels[1] (SLA).agg: …" below
        return DashboardError(f"{self.where}{': ' if self.top else '.'}{key}: {message}")

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool) \
                or not str(value).strip():
            raise self.error(key, f"must be a non-empty string (got {value!r})")
        return str(value).strip()

    def duration(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None:
            try:
                parse_duration(value, key)
            except QueryParamError:
                raise self.error(key, f"must be a duration like 5m, 1h or 7d (got {value!r})"
                                 ) from None
        return value


def _number(fields: _Fields, key: str) -> float:
    value = fields.raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fields.error(key, f"must be a number (got {value!r})")
    return float(value)


def _threshold(raw: Any, where: str) -> Threshold:
    f = _Fields(raw, where, _THRESHOLD_FIELDS)
    color = (f.text("color") or "red").lower()
    if color not in COLORS:
        raise f.error("color", f"must be one of {', '.join(COLORS)} (got {color!r})")
    return Threshold(value=_number(f, "value"), color=color, label=f.text("label"))


def _agg(f: _Fields) -> str | None:
    agg = f.text("agg")
    if agg is None:
        return None
    agg = agg.lower()
    if agg not in NUMBER_AGGS and agg not in COUNTER_AGGS and not QUANTILE_AGG.match(agg):
        raise f.error("agg", f"must be one of {AGG_HELP} (got {agg!r})")
    return agg


def _by(f: _Fields) -> tuple[str, ...]:
    value = f.raw.get("by")
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise f.error("by", f"must be a list of attribute keys (got {value!r})")
    return tuple(v.strip() for v in items)


def _where(f: _Fields) -> tuple[tuple[str, str], ...]:
    value = f.raw.get("where")
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value) \
            or any(isinstance(v, dict | list) or v is None for v in value.values()):
        raise f.error("where", f"must map attribute keys to values, e.g. {{route: /apply}} "
                               f"(got {value!r})")
    return tuple((k.strip(), str(v)) for k, v in value.items())


def _panel(raw: Any, where: str) -> Panel:
    title = raw.get("title") if isinstance(raw, dict) else None
    if isinstance(title, str) and title.strip():
        where = f"{where} ({title.strip()})"
    f = _Fields(raw, where, _PANEL_FIELDS)
    kind = (f.text("type") or "chart").lower()
    if kind not in PANEL_TYPES:
        raise f.error("type", f"must be one of {', '.join(PANEL_TYPES)} (got {kind!r})")
    metric, sql = f.text("metric"), f.text("sql")
    if (metric is None) == (sql is None):
        raise DashboardError(f"{where}: give either metric (with agg, by, where) or sql")
    if sql is not None:
        for key in ("agg", "by", "where", "step"):
            if key in raw:
                raise f.error(key, "only applies to metric panels; write it into the sql")
    decimals = raw.get("decimals")
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int)
                                 or not 0 <= decimals <= 10):
        raise f.error("decimals", f"must be a whole number 0-10 (got {decimals!r})")
    thresholds = raw.get("thresholds") or []
    if not isinstance(thresholds, list):
        raise f.error("thresholds", "must be a list of {value, color, label}")
    return Panel(
        title=str(f.text("title", required=True)), type=kind, metric=metric, agg=_agg(f),
        by=_by(f), where=_where(f), step=f.duration("step"), sql=sql, unit=f.text("unit"),
        decimals=decimals, description=f.text("description"),
        thresholds=tuple(_threshold(t, f"{where}.thresholds[{i}]")
                         for i, t in enumerate(thresholds)))


def parse_dashboard(doc: Any, name: str, dashboard_id: str) -> Dashboard:
    """A parsed YAML document as a Dashboard; ``name`` starts every error message."""
    if doc is None:
        raise DashboardError(f"{name}: is empty; a dashboard needs a title and panels")
    f = _Fields(doc, name, _DASHBOARD_FIELDS, top=True)
    panels = doc.get("panels")
    if not isinstance(panels, list) or not panels:
        raise DashboardError(f"{name}: panels: must be a non-empty list of panels")
    return Dashboard(
        id=dashboard_id, title=f.text("title") or dashboard_id,
        range=f.duration("range") or "1h", description=f.text("description"), file=name,
        panels=tuple(_panel(p, f"{name}: panels[{i}]") for i, p in enumerate(panels)))


def load_dashboard(path: Path) -> Dashboard:
    try:
        doc = read_yaml(str(path), "dashboard file")
    except YamlFileError as exc:
        raise DashboardError(f"{path.name}: {exc}") from None
    return parse_dashboard(doc, path.name, path.stem)


def dashboard_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files of ``directory``, sorted by name."""
    root = Path(directory)
    if not root.is_dir():
        raise DashboardError(f"--dashboards: no such directory {str(directory)!r}; give a "
                             "directory of dashboard YAML files")
    return sorted(p for p in root.iterdir()
                  if p.suffix in (".yaml", ".yml") and p.is_file())


def load_dashboards(directory: str | os.PathLike[str] | None) -> list[Dashboard]:
    """Every dashboard of ``directory`` (none when it is None); the first bad file raises."""
    if directory is None:
        return []
    out: dict[str, Dashboard] = {}
    for path in dashboard_files(directory):
        dashboard = load_dashboard(path)
        if dashboard.id in out:
            raise DashboardError(f"{path.name}: the dashboard id {dashboard.id!r} is also "
                                 f"used by {out[dashboard.id].file}; rename one")
        out[dashboard.id] = dashboard
    return list(out.values())
