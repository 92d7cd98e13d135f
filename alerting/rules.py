"""Rules files: parsing and validation into frozen value types.

A rules file holds ``groups:`` of alert rules and, optionally, ``notifiers:``, ``routes:`` and
``slos:``; several files are merged.  Every problem is a ``RuleFileError`` whose one line names
the file, the group, the rule and the field, e.g.
``rules.yaml: groups[0] (permits).rules[1] (HighLatency).for: must be a duration like 30s or 5m
(got 'soon')``.  Files are all validated before any is applied, so a bad reload changes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..yaml_file import YamlFileError, read_yaml
from .durations import parse_duration
from .errors import RuleFileError
from .templates import compile_error

ON_NO_DATA = ("ok", "alerting", "keep_last", "nodata")
ON_ERROR = ("keep_last", "alerting", "error")
DEFAULT_INTERVAL = 60.0
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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


def _expand_env(value: Any, where: str) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in strings (secrets stay out of rules files)."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) in os.environ:
                return os.environ[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise RuleFileError(f"{where}: environment variable {m.group(1)} is not set; set it "
                                f"or write ${{{m.group(1)}:-default}}")
        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class _Fields:
    """Typed access to one YAML mapping that reports errors with its location."""

    def __init__(self, raw: Any, where: str, allowed: Sequence[str]) -> None:
        if not isinstance(raw, dict):
            raise RuleFileError(f"{where}: must be a mapping (got {type(raw).__name__})")
        unknown = [k for k in raw if k not in allowed]
        if unknown:
            raise RuleFileError(f"{where}: unknown field {unknown[0]!r}; known fields: "
                                + ", ".join(allowed))
        self.raw, self.where = raw, where

    def fail(self, key: str, message: str) -> RuleFileError:
        return RuleFileError(f"{self.where}.{key}: {message}")

    def string(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(key, f"must be a non-empty string (got {value!r})")
        return value

    def name(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        if not _NAME.match(value):
            raise self.fail(key, f"must be a name of letters, digits, _ . : - (got {value!r})")
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError:
            raise self.fail(key, f"must be a duration like 30s, 5m or 1h (got {value!r})") \
                from None

    def labels(self, key: str) -> dict[str, str]:
        value = self.raw.get(key) or {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping of names to strings (got {value!r})")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k or isinstance(v, dict | list) or v is None:
                raise self.fail(key, f"must map names to strings (got {k!r}: {v!r})")
            out[k] = str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def names(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of notifier names (got {value!r})")
        return tuple(value)

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)} (got {value!r})")
        return str(value)


def check_select(sql: str) -> str | None:
    """Why ``sql`` is not a single SELECT statement, or None if it is one."""
    try:
        statements = duckdb.connect().extract_statements(sql)
    except duckdb.Error as exc:
        return f"is not valid SQL: {str(exc).splitlines()[0]}"
    if len(statements) != 1:
        return f"must be exactly one SELECT statement (got {len(statements)})"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"must be a read-only SELECT (got {statements[0].type.name})"
    return None


def _parse_rule(raw: Any, where: str, group: str, interval: float,
                group_labels: dict[str, str], source: str) -> Rule:
    name = raw.get("alert") if isinstance(raw, dict) else None
    if isinstance(name, str):
        where = f"{where} ({name})"
    f = _Fields(raw, where, ("alert", "sql", "condition", "for", "keep_firing_for", "labels",
                             "annotations", "notify", "on_no_data", "on_error"))
    alert = f.name("alert")
    sql = f.string("sql", required=True)
    assert sql is not None
    problem = check_select(sql)
    if problem:
        raise f.fail("sql", problem)
    condition = f.string("condition")
    if condition is not None:
        problem = check_select(f"SELECT {condition}")
        if problem:
            raise f.fail("condition", f"must be one SQL boolean expression like value > 2 "
                                      f"({problem})")
    annotations = f.labels("annotations")
    for key, text in annotations.items():
        problem = compile_error(text)
        if problem:
            raise f.fail(f"annotations.{key}", problem)
    return Rule(
        alert=alert, group=group, sql=sql, condition=condition,
        for_seconds=f.duration("for", 0.0), keep_firing_for=f.duration("keep_firing_for", 0.0),
        interval=interval, labels={**group_labels, **f.labels("labels")},
        annotations=annotations, notify=f.names("notify"),
        on_no_data=f.choice("on_no_data", ON_NO_DATA, "ok"),
        on_error=f.choice("on_error", ON_ERROR, "keep_last"), source=source)


def _parse_group(raw: Any, where: str, source: str) -> Group:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str):
        where = f"{where} ({name})"
    f = _Fields(raw, where, ("name", "interval", "labels", "rules"))
    group = f.name("name")
    interval = f.duration("interval", DEFAULT_INTERVAL)
    if interval <= 0:
        raise f.fail("interval", f"must be > 0 (got {raw.get('interval')!r})")
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise f.fail("rules", "must be a non-empty list of rules")
    labels = f.labels("labels")
    rules = tuple(_parse_rule(r, f"{where}.rules[{i}]", group, interval, labels, source)
                  for i, r in enumerate(rules_raw))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.alert in seen:
            raise RuleFileError(f"{where}.rules[{i}] ({rule.alert}).alert: duplicate alert name "
                                "in this group; give each rule its own name")
        seen.add(rule.alert)
    return Group(group, interval, rules, source)


def _parse_notifiers(raw: Any, where: str, source: str) -> list[NotifierConfig]:
    from .notifiers import validate_options

    if not isinstance(raw, dict):
        raise RuleFileError(f"{where}: must be a mapping of notifier names to settings")
    out = []
    for name, body in raw.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise RuleFileError(f"{at}: notifier names are letters, digits, _ . : -")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise RuleFileError(f"{at}.type: is required (webhook, alertmanager, email, slack "
                                "or command)")
        options = {k: v for k, v in body.items() if k != "type"}
        validate_options(body["type"], options, at)
        out.append(NotifierConfig(name, body["type"], options, source))
    return out


def _parse_routes(raw: Any, where: str) -> list[RouteConfig]:
    if not isinstance(raw, list):
        raise RuleFileError(f"{where}: must be a list of {{match: {{...}}, notify: [...]}}")
    out = []
    for i, r in enumerate(raw):
        f = _Fields(r, f"{where}[{i}]", ("match", "notify"))
        notify = f.names("notify")
        if not notify:
            raise f.fail("notify", "must list at least one notifier")
        out.append(RouteConfig(f.labels("match"), notify))
    return out


def parse_document(doc: Any, source: str) -> RuleSet:
    """One rules file's YAML document, validated (notifier names are checked in ``merge``)."""
    if doc is None:
        return RuleSet(files=(source,))
    f = _Fields(doc, source, ("groups", "notifiers", "routes", "slos"))
    doc = _expand_env(doc, source)
    groups_raw = doc.get("groups") or []
    if not isinstance(groups_raw, list):
        raise f.fail("groups", "must be a list of groups")
    groups = [_parse_group(g, f"{source}: groups[{i}]", source) for i, g in enumerate(groups_raw)]
    slos: list[Any] = []
    if doc.get("slos"):
        from .slo import parse_slos

        slos, slo_groups = parse_slos(doc["slos"], f"{source}: slos", source)
        groups.extend(slo_groups)
    notifiers = _parse_notifiers(doc.get("notifiers") or {}, f"{source}: notifiers", source)
    return RuleSet(tuple(groups), {n.name: n for n in notifiers},
                   tuple(_parse_routes(doc.get("routes") or [], f"{source}: routes")),
                   tuple(slos), (source,))


def load_file(path: str) -> RuleSet:
    try:
        doc = read_yaml(path, "rules file")
    except YamlFileError as exc:
        raise RuleFileError(f"{path}: {exc}") from None
    return parse_document(doc, path)


def merge(sets: Sequence[RuleSet]) -> RuleSet:
    """Several files as one; group names, notifier names and references must agree."""
    groups: list[Group] = []
    notifiers: dict[str, NotifierConfig] = {}
    for s in sets:
        for g in s.groups:
            other = next((o for o in groups if o.name == g.name), None)
            if other is not None:
                raise RuleFileError(f"{g.source}: group {g.name!r} is also defined in "
                                    f"{other.source}; group names must be unique")
            groups.append(g)
        for name, n in s.notifiers.items():
            if name in notifiers:
                raise RuleFileError(f"{n.source}: notifier {name!r} is also defined in "
                                    f"{notifiers[name].source}; notifier names must be unique")
            notifiers[name] = n
    merged = RuleSet(tuple(groups), notifiers, tuple(r for s in sets for r in s.routes),
                     tuple(x for s in sets for x in s.slos),
                     tuple(f for s in sets for f in s.files))
    for g in merged.groups:
        for i, rule in enumerate(g.rules):
            for name in rule.notify:
                if name not in notifiers:
                    raise RuleFileError(
                        f"{rule.source}: group {g.name} rule {rule.alert} (rules[{i}]).notify: "
                        f"unknown notifier {name!r}; define it under notifiers:")
    for route in merged.routes:
        for name in route.notify:
            if name not in notifiers:
                raise RuleFileError(f"routes: unknown notifier {name!r}; define it under "
                                    "notifiers:")
    return merged


def load_rules(paths: Sequence[str]) -> RuleSet:
    """Every file parsed and cross-checked; raises before anything is applied."""
    return merge([load_file(p) for p in paths])
