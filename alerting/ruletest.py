"""``otel-hms rules test``: unit tests for rules, in the spirit of ``promtool test rules``.

A test file lists ``rule_files`` (relative to it) and ``tests``; each test has
``input_series`` in compact notation (see ``series``), sampled every ``interval``, and
``alert_rule_test`` cases: at ``eval_time``, the *firing* instances of ``alertname`` must be
exactly ``exp_alerts`` (labels; annotations when given).  ``now()`` in rule SQL is the
evaluation time and points after it are hidden, so windows like ``now() - INTERVAL 5 MINUTE``
work as in production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_hms.common.durations import format_duration, parse_seconds
from otel_hms.common.yaml_file import YamlFileError, read_yaml

from .errors import RuleFileError
from .evaluator import FIRING, Instance
from .query import SqlQuery
from .replay import replay
from .rule_files import load_rules
from .ruletest_input import InputSeries, expand_values, memory_store, parse_series

# Test time 0.  Not the epoch: OTLP reads a zero timestamp as "unset".
ORIGIN = 1_000_000_000.0


@dataclass(frozen=True)
class Case:
    eval_time: float
    alertname: str
    expected: tuple[tuple[dict[str, str], dict[str, str] | None], ...]


def _fail(where: str, message: str) -> RuleFileError:
    return RuleFileError(f"{where}: {message}")


def _duration(raw: Any, where: str, default: float | None = None) -> float:
    if raw is None and default is not None:
        return default
    try:
        seconds: float = parse_seconds(raw)
    except ValueError:
        raise _fail(where, f"must be a duration like 15s or 2m (got {raw!r})") from None
    return seconds


def _strings(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(where, "must be a mapping of names to strings")
    return {str(k): str(v) for k, v in raw.items()}


def _input(raw: Any, where: str) -> InputSeries:
    if not isinstance(raw, dict) or "series" not in raw or "values" not in raw:
        raise _fail(where, "needs series: 'name{label=\"value\"}' and values: '1 2 3'")
    try:
        name, attrs = parse_series(str(raw["series"]))
    except ValueError as exc:
        raise _fail(f"{where}.series", str(exc)) from None
    try:
        values = expand_values(str(raw["values"]))
    except ValueError as exc:
        raise _fail(f"{where}.values", str(exc)) from None
    kind = raw.get("type", "gauge")
    if kind not in ("gauge", "sum"):
        raise _fail(f"{where}.type", f"must be gauge or sum (got {kind!r})")
    return InputSeries(name, attrs, values, kind)


def _cases(raw: Any, where: str) -> list[Case]:
    if not isinstance(raw, list):
        raise _fail(where, "must be a list of {eval_time, alertname, exp_alerts}")
    out = []
    for i, c in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("alertname"), str):
            raise _fail(at, "needs alertname and eval_time")
        expected = []
        for j, e in enumerate(c.get("exp_alerts") or []):
            if not isinstance(e, dict):
                raise _fail(f"{at}.exp_alerts[{j}]", "must be {exp_labels, exp_annotations}")
            labels = {**_strings(e.get("exp_labels"), f"{at}.exp_alerts[{j}].exp_labels"),
                      "alertname": c["alertname"]}
            notes = (_strings(e["exp_annotations"], f"{at}.exp_alerts[{j}].exp_annotations")
                     if "exp_annotations" in e else None)
            expected.append((labels, notes))
        out.append(Case(_duration(c.get("eval_time"), f"{at}.eval_time"), c["alertname"],
                        tuple(expected)))
    return out


def _describe(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _compare(case: Case, firing: list[Instance]) -> str | None:
    got = sorted((dict(i.labels), dict(i.annotations)) for i in firing)
    by_labels = {_describe(lb): n for lb, n in got}
    wanted = {_describe(lb): n for lb, n in case.expected}
    if by_labels.keys() == wanted.keys() and all(
            n is None or by_labels[k] == n for k, n in wanted.items()):
        return None
    exp = "; ".join(_describe(lb) + (f" {n}" if n is not None else "")
                    for lb, n in case.expected) or "none"
    act = "; ".join(f"{_describe(lb)} {n}" for lb, n in got) or "none"
    return (f"at {format_duration(case.eval_time)} {case.alertname}: expected firing "
            f"[{exp}], got [{act}]")


def run_test(test: Mapping[str, Any], where: str, rule_files: list[str]) -> list[str]:
    """Failures of one test (empty when it passes)."""
    interval = _duration(test.get("interval"), f"{where}.interval", 60.0)
    series = [_input(s, f"{where}.input_series[{i}]")
              for i, s in enumerate(test.get("input_series") or [])]
    cases = _cases(test.get("alert_rule_test") or [], f"{where}.alert_rule_test")
    rules = load_rules(rule_files)
    known = {r.alert for r in rules.rules()}
    for c in cases:
        if c.alertname not in known:
            raise _fail(where, f"alertname {c.alertname!r} is not a rule in "
                               + ", ".join(rule_files))
    con = memory_store(series, interval, ORIGIN)
    try:
        end = ORIGIN + max((c.eval_time for c in cases), default=0.0)
        query = SqlQuery(con, 30.0, 100_000, replaying=True)
        # state of each alert after its last evaluation at or before each time
        timeline: dict[str, list[tuple[float, list[Instance]]]] = {}
        for ev in replay(rules.groups, query, ORIGIN, end):
            timeline.setdefault(ev.rule.alert, []).append(
                (ev.at, [i for i in ev.step.instances.values() if i.state == FIRING]))
    finally:
        con.close()
    failures = []
    for c in cases:
        seen = [f for t, f in timeline.get(c.alertname, []) if t <= ORIGIN + c.eval_time]
        problem = _compare(c, seen[-1] if seen else [])
        if problem:
            failures.append(problem)
    return failures


def run_file(path: str) -> tuple[int, list[tuple[str, list[str]]]]:
    """Run every test in ``path``: (number of tests, [(test name, failures)])."""
    try:
        doc = read_yaml(path, "test file")
    except YamlFileError as exc:
        raise RuleFileError(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise RuleFileError(f"{path}: a rule test file needs rule_files: [...] and tests: [...]")
    base = os.path.dirname(os.path.abspath(path))
    files = doc.get("rule_files") or []
    if not isinstance(files, list) or not files:
        raise RuleFileError(f"{path}: rule_files: must list the rules files to test")
    rule_files = [f if os.path.isabs(f) else os.path.join(base, f) for f in files]
    results = []
    for i, test in enumerate(doc["tests"]):
        name = str(test.get("name", f"tests[{i}]")) if isinstance(test, dict) else f"tests[{i}]"
        if not isinstance(test, dict):
            raise RuleFileError(f"{path}: tests[{i}]: must be a mapping")
        results.append((name, run_test(test, f"{path}: tests[{i}]", rule_files)))
    return len(results), results
