"""Alert rules as frozen value types, and a group of them parsed and validated.

A rule is one SQL query with a condition, ``for``, labels and annotations; groups run their
rules on one interval.  Problems are noted in one line each, in one style (the file, the
group and rule by name, then the field), e.g. ``rules.yaml: group permits rule
HighLatency.for: must be a duration like 30s, 5m or 1h (got 'soon')``.  Whole files
(notifiers, routes, SLOs, several merged) are ``rule_files``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from otel_hms.common.yaml_fields import Fields, located
from otel_hms.query.sql_guard import RefusedSql, check_tree, parse_tree

from .templates import compile_error

ON_NO_DATA = ("ok", "alerting", "keep_last", "nodata")
ON_ERROR = ("keep_last", "alerting", "error")
DEFAULT_INTERVAL = 60.0


@dataclass(frozen=True)
class Rule:
    """One alert rule; ``key`` (group/alert) is its identity in the store."""

    alert: str
    group: str
    sql: str
    condition: str | None = None
    for_seconds: float = 0.0
    keep_firing_for: float = 0.0
    interval: float = DEFAULT_INTERVAL
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    on_no_data: str = "ok"
    on_error: str = "keep_last"
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.group}/{self.alert}"

    def template_view(self) -> dict[str, Any]:
        """What templates see as ``rule``."""
        return {"name": self.alert, "group": self.group, "for": self.for_seconds,
                "labels": dict(self.labels), "interval": self.interval}


@dataclass(frozen=True)
class Group:
    name: str
    interval: float
    rules: tuple[Rule, ...]
    source: str = ""


@dataclass(frozen=True)
class NotifierConfig:
    name: str
    type: str
    options: Mapping[str, Any]
    source: str = ""


@dataclass(frozen=True)
class RouteConfig:
    """Alerts whose labels equal every ``match`` pair also go to ``notify``."""

    match: Mapping[str, str]
    notify: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    groups: tuple[Group, ...] = ()
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
    slos: tuple[Any, ...] = ()
    files: tuple[str, ...] = ()

    def rules(self) -> list[Rule]:
        return [r for g in self.groups for r in g.rules]

    def notifiers_for(self, rule_notify: Sequence[str], labels: Mapping[str, str]) -> list[str]:
        """The rule's own notifiers, then those of every route matching ``labels``; no repeats."""
        names = list(rule_notify)
        for route in self.routes:
            if all(labels.get(k) == v for k, v in route.match.items()):
                names.extend(route.notify)
        return list(dict.fromkeys(names))


def check_select(sql: str) -> str | None:
    """Why ``sql`` is not a single read-only SELECT statement, or None if it is one (the
    SQL endpoint's own check, ``sql_guard``, so a rule is refused when its file loads)."""
    con = duckdb.connect()
    try:
        statements = con.extract_statements(sql)
        if len(statements) != 1:
            return f"must be exactly one SELECT statement (got {len(statements)})"
        if statements[0].type != duckdb.StatementType.SELECT:
            return f"must be a read-only SELECT (got {statements[0].type.name})"
        check_tree(parse_tree(con, sql))
    except duckdb.Error as exc:
        return f"is not valid SQL: {str(exc).splitlines()[0]}"
    except RefusedSql as exc:
        return f"must be a read-only SELECT ({exc.reason})"
    finally:
        con.close()
    return None


def _parse_rule(raw: Any, where: str, group: str, interval: float,
                group_labels: dict[str, str], source: str, problems: list[str]) -> Rule | None:
    """The rule at ``where``, or None when it has problems (each noted in ``problems``)."""
    before = len(problems)
    f = Fields(raw, where, ("alert", "sql", "condition", "for", "keep_firing_for", "labels",
                            "annotations", "notify", "on_no_data", "on_error"), problems)
    alert = f.name("alert")
    sql = f.string("sql", required=True)
    problem = check_select(sql) if sql is not None else None
    if problem:
        f.fail("sql", problem)
    condition = f.string("condition")
    problem = check_select(f"SELECT {condition}") if condition is not None else None
    if problem:
        f.fail("condition", f"must be one SQL boolean expression like value > 2 ({problem})")
    annotations = f.labels("annotations")
    for key, text in annotations.items():
        problem = compile_error(text)
        if problem:
            f.fail(f"annotations.{key}", problem)
    rule = Rule(
        alert=alert, group=group, sql=sql or "", condition=condition,
        for_seconds=f.duration("for", 0.0), keep_firing_for=f.duration("keep_firing_for", 0.0),
        interval=interval, labels={**group_labels, **f.labels("labels")},
        annotations=annotations, notify=f.names("notify"),
        on_no_data=f.choice("on_no_data", ON_NO_DATA, "ok"),
        on_error=f.choice("on_error", ON_ERROR, "keep_last"), source=source)
    return rule if len(problems) == before else None


def parse_group(raw: Any, index: int, source: str, problems: list[str]) -> Group | None:
    """The group and its sound rules; None when it has no usable name."""
    where = f"{source}: " + located("group", raw, "name", f"groups[{index}]")
    f = Fields(raw, where, ("name", "interval", "labels", "rules"), problems)
    group = f.name("name")
    interval = f.duration("interval", DEFAULT_INTERVAL)
    if interval <= 0:
        f.fail("interval", f"must be > 0 (got {f.raw.get('interval')!r})")
        interval = DEFAULT_INTERVAL
    rules_raw = f.raw.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        if f.whole:
            f.fail("rules", "must be a non-empty list of rules")
        rules_raw = []
    labels = f.labels("labels")
    rules: list[Rule] = []
    first: dict[str, int] = {}
    for i, r in enumerate(rules_raw):
        at = f"{where} " + located("rule", r, "alert", f"rules[{i}]")
        rule = _parse_rule(r, at, group, interval, labels, source, problems)
        name = r.get("alert") if isinstance(r, dict) else None
        if isinstance(name, str) and name in first:
            problems.append(f"{at}.alert: duplicate alert name in this group (rules[{first[name]}] "
                            f"and rules[{i}]); give each rule its own name")
        elif rule is not None:
            rules.append(rule)
        if isinstance(name, str):
            first.setdefault(name, i)
    return Group(group, interval, tuple(rules), source) if group else None
