"""Rules files: parsing and validation into frozen value types.

A rules file holds ``groups:`` of alert rules and, optionally, ``notifiers:``, ``routes:`` and
``slos:``; several files are merged.  Every problem of every file is found in one pass and
named by one line in one style: the file, then the group, rule, notifier or SLO by name (by
index where it has no usable name), then the field, e.g. ``rules.yaml: group permits rule
HighLatency.for: must be a duration like 30s, 5m or 1h (got 'soon')``.  ``RuleFileError``
carries them all; files are all validated before any is applied, so a bad reload changes
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from otel_hms.common.env import expand_env
from otel_hms.common.yaml_file import YamlFileError, read_yaml
from otel_hms.query.sql_guard import RefusedSql, check_tree, parse_tree

from .errors import RuleFileError
from .fields import NAME, Fields, located
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


def _parse_group(raw: Any, index: int, source: str, problems: list[str]) -> Group | None:
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


def _parse_notifiers(raw: Any, source: str, problems: list[str]) -> list[NotifierConfig]:
    from .notifiers import option_problems

    if not isinstance(raw, dict):
        problems.append(f"{source}: notifiers: must be a mapping of notifier names to settings")
        return []
    out = []
    for name, body in raw.items():
        at = f"{source}: notifier {name}"
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(f"{source}: notifiers: {name!r}: notifier names are letters, "
                            "digits, _ . : -")
            continue
        # A notifier with problems is still listed (never built: its problems stop the
        # load), so the rules naming it are not also told that it is unknown.
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            problems.append(f"{at}.type: is required (webhook, alertmanager, email, slack "
                            "or command)")
            out.append(NotifierConfig(name, "", {}, source))
            continue
        options = {k: v for k, v in body.items() if k != "type"}
        problems.extend(option_problems(body["type"], options, at))
        out.append(NotifierConfig(name, body["type"], options, source))
    return out


def _parse_routes(raw: Any, source: str, problems: list[str]) -> list[RouteConfig]:
    if not isinstance(raw, list):
        problems.append(f"{source}: routes: must be a list of {{match: {{...}}, notify: [...]}}")
        return []
    out = []
    for i, r in enumerate(raw):
        before = len(problems)
        f = Fields(r, f"{source}: routes[{i}]", ("match", "notify"), problems)
        notify = f.names("notify")
        if not notify and f.whole:
            f.fail("notify", "must list at least one notifier")
        route = RouteConfig(f.labels("match"), notify)
        if len(problems) == before:
            out.append(route)
    return out


def _document(doc: Any, source: str, problems: list[str]) -> RuleSet:
    """What is sound in one rules file's YAML document; its problems go to ``problems``."""
    if doc is None:
        return RuleSet(files=(source,))
    f = Fields(doc, source, ("groups", "notifiers", "routes", "slos"), problems)
    doc = expand_env(f.raw, source, problems)
    groups_raw = doc.get("groups") or []
    if not isinstance(groups_raw, list):
        problems.append(f"{source}: groups: must be a list of groups")
        groups_raw = []
    parsed = [_parse_group(g, i, source, problems) for i, g in enumerate(groups_raw)]
    groups = [g for g in parsed if g is not None]
    slos: list[Any] = []
    if doc.get("slos"):
        from .slo import collect_slos

        slos, slo_groups = collect_slos(doc["slos"], source, problems)
        groups.extend(slo_groups)
    notifiers = _parse_notifiers(doc.get("notifiers") or {}, source, problems)
    return RuleSet(tuple(groups), {n.name: n for n in notifiers},
                   tuple(_parse_routes(doc.get("routes") or [], source, problems)),
                   tuple(slos), (source,))


def _raise_any(problems: list[str]) -> None:
    if problems:
        raise RuleFileError(*problems)


def parse_document(doc: Any, source: str) -> RuleSet:
    """One rules file's YAML document, validated (notifier names are checked in ``merge``)."""
    problems: list[str] = []
    rules = _document(doc, source, problems)
    _raise_any(problems)
    return rules


def _file(path: str, problems: list[str]) -> RuleSet:
    try:
        doc = read_yaml(path, "rules file")
    except YamlFileError as exc:
        problems.append(f"{path}: {exc}")
        return RuleSet(files=(path,))
    return _document(doc, path, problems)


def load_file(path: str) -> RuleSet:
    problems: list[str] = []
    rules = _file(path, problems)
    _raise_any(problems)
    return rules


def _merge(sets: Sequence[RuleSet], problems: list[str]) -> RuleSet:
    """Several files as one, without what clashes: group and notifier names are unique and
    every notifier a rule or route names is defined."""
    groups: dict[str, Group] = {}
    notifiers: dict[str, NotifierConfig] = {}
    for s in sets:
        for g in s.groups:
            if g.name in groups:
                problems.append(f"{g.source}: group {g.name}: also defined in "
                                f"{groups[g.name].source}; group names must be unique")
                continue
            groups[g.name] = g
        for name, n in s.notifiers.items():
            if name in notifiers:
                problems.append(f"{n.source}: notifier {name}: also defined in "
                                f"{notifiers[name].source}; notifier names must be unique")
                continue
            notifiers[name] = n
    for g in groups.values():
        for rule in g.rules:
            for name in rule.notify:
                if name not in notifiers:
                    problems.append(f"{rule.source}: group {g.name} rule {rule.alert}.notify: "
                                    f"unknown notifier {name!r}; define it under notifiers:")
    for s in sets:
        for i, route in enumerate(s.routes):
            for name in route.notify:
                if name not in notifiers:
                    problems.append(f"{', '.join(s.files) or 'routes'}: routes[{i}].notify: "
                                    f"unknown notifier {name!r}; define it under notifiers:")
    return RuleSet(tuple(groups.values()), notifiers, tuple(r for s in sets for r in s.routes),
                   tuple(x for s in sets for x in s.slos),
                   tuple(f for s in sets for f in s.files))


def merge(sets: Sequence[RuleSet]) -> RuleSet:
    """Several files as one; raises ``RuleFileError`` with every clash."""
    problems: list[str] = []
    rules = _merge(sets, problems)
    _raise_any(problems)
    return rules


def collect_rules(paths: Sequence[str]) -> tuple[RuleSet, list[str]]:
    """Every file parsed and cross-checked: what is sound, and every problem found."""
    problems: list[str] = []
    rules = _merge([_file(p, problems) for p in paths], problems)
    return rules, problems


def load_rules(paths: Sequence[str]) -> RuleSet:
    """Every file parsed and cross-checked; raises before anything is applied."""
    rules, problems = collect_rules(paths)
    _raise_any(problems)
    return rules
