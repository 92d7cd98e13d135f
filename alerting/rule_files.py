"""Rules files: each parsed and validated, then merged into one ``RuleSet``.

A rules file holds ``groups:`` of alert rules (``rules``) and, optionally, ``notifiers:``,
``routes:`` and ``slos:`` (``slo``); ``${ENV}`` references are expanded first.  Every
problem of every file is found in one pass; ``RuleFileError`` carries them all, and files
are all validated before any is applied, so a bad reload changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_hms.common.env import expand_env
from otel_hms.common.yaml_fields import NAME, Fields
from otel_hms.common.yaml_file import YamlFileError, read_yaml

from .errors import RuleFileError
from .notifiers import option_problems
from .rules import Group, NotifierConfig, RouteConfig, RuleSet, parse_group
from .slo import collect_slos


def _parse_notifiers(raw: Any, source: str, problems: list[str]) -> list[NotifierConfig]:
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
    f = Fields(doc, source, ("groups", "notifiers", "routes", "slos"), problems, top=True)
    doc = expand_env(f.raw, source, problems)
    groups_raw = doc.get("groups") or []
    if not isinstance(groups_raw, list):
        f.fail("groups", "must be a list of groups")
        groups_raw = []
    parsed = [parse_group(g, i, source, problems) for i, g in enumerate(groups_raw)]
    groups = [g for g in parsed if g is not None]
    slos: list[Any] = []
    if doc.get("slos"):
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
