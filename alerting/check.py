"""``otel-hms rules check``: syntax, SQL bound against the real schema, templates rendered.

Binding runs each rule's SQL (with its condition) as ``LIMIT 0`` on an empty in-memory store
with the same schema, so an unknown column or view is found before deployment; templates
are rendered with every label the query can produce, undefined names being errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import duckdb
import jinja2

from otel_hms.storage.alert_state import install as install_alert_tables

from .evaluator import QueryFailed, alert_labels
from .query import ACTIVE_COLUMN, rule_sql, value_column
from .rule_files import collect_rules
from .rules import Rule, RuleSet
from .ruletest_input import memory_store
from .templates import render_strict


def _where(rule: Rule) -> str:
    return f"{rule.source}: group {rule.group} rule {rule.alert}"


def _describe(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[str]]:
    cur = con.cursor()
    try:
        cur.execute(f"SELECT * FROM ({sql}) AS checked LIMIT 0")
        return [d[0] for d in cur.description or []], [str(d[1]) for d in cur.description or []]
    finally:
        cur.close()


def check_rule(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[str]:
    """Problems with ``rule`` against the schema on ``con`` (empty when it is fine)."""
    try:
        columns, types = _describe(con, rule_sql(replace(rule, condition=None), 0.0))
    except duckdb.Error as exc:
        return [f"{_where(rule)}.sql: {str(exc).splitlines()[0]}"]
    if rule.condition is not None:
        try:
            columns, types = _describe(con, rule_sql(rule, 0.0))
        except duckdb.Error as exc:
            return [f"{_where(rule)}.condition: {str(exc).splitlines()[0]}"]
    problems = []
    try:
        vi = value_column(columns, types)
    except QueryFailed as exc:
        return [f"{_where(rule)}.sql: {exc}"]
    labels = {c: f"<{c}>" for i, (c, t) in enumerate(zip(columns, types))
              if t.upper() == "VARCHAR" and i != vi and c != ACTIVE_COLUMN}
    for key, text in rule.annotations.items():
        try:
            render_strict(text, alert_labels(rule, labels), 1.0, rule.template_view())
        except jinja2.TemplateError as exc:
            problems.append(f"{_where(rule)}.annotations.{key}: {exc} (the query's labels are "
                            f"{', '.join(labels) or 'none'})")
    return problems


def check_files(paths: Sequence[str]) -> tuple[RuleSet, list[str]]:
    """Every problem of every file: those of the files themselves, then those of binding
    each sound rule (a rule with a syntax problem is not bound)."""
    rules, problems = collect_rules(paths)
    con = memory_store([], 1.0)
    install_alert_tables(con)
    try:
        problems += [p for r in rules.rules() for p in check_rule(con, r)]
    finally:
        con.close()
    return rules, problems
