"""``otel-hms rules backtest``: replay rules over stored history, list the transitions.

Each rule is evaluated every group interval from ``now - since`` to now with ``now()``
pinned to the evaluation time, exactly as ``serve`` would have evaluated it, without
notifying anyone.  It runs inside the server (``POST /api/v1/rules/backtest``) because the
server holds the store; ``--db`` replays a store file no server has open.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import duckdb
import yaml

from otel_hms.common.times import rfc3339_ms
from otel_hms.storage.store import StoreError, StoreLocked, open_read_only

from .errors import BacktestError, RuleFileError
from .evaluator import Query
from .replay import replay
from .rule_files import parse_document
from .rules import RuleSet

COLUMNS = ["time", "group", "alertname", "labels", "from_state", "to_state", "value"]
MAX_EVALUATIONS = 50_000


def parse_rules_text(text: str, name: str) -> RuleSet:
    """A rules file sent as text (notifier names are not checked: nothing is notified)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_document(doc, name)


def backtest(rules: RuleSet, query: Query, since: float, rule: str | None = None,
             end: float | None = None) -> dict[str, Any]:
    """Transitions as a result table (``columns``, ``rows``) like the SQL endpoint's."""
    end = time.time() if end is None else end
    groups = list(rules.groups)
    if rule is not None:
        groups = [replace(g, rules=tuple(r for r in g.rules if r.alert == rule))
                  for g in groups]
        groups = [g for g in groups if g.rules]
        if not groups:
            raise BacktestError(f"--rule: no rule named {rule!r} in the file")
    if since <= 0:
        raise BacktestError("--since: must be > 0, like 24h")
    rows = []
    evaluations = errors = 0
    try:
        for ev in replay(groups, query, end - since, end, MAX_EVALUATIONS):
            evaluations += 1
            errors += ev.step.health == "error"
            for t in ev.step.transitions:
                labels = {k: v for k, v in t.labels.items() if k != "alertname"}
                rows.append([rfc3339_ms(t.at), ev.rule.group, ev.rule.alert, labels, t.from_state,
                             t.to_state, t.value])
    except OverflowError:
        raise BacktestError(f"--since: more than {MAX_EVALUATIONS} evaluations; shorten "
                            "--since or lengthen the group interval") from None
    return {"columns": COLUMNS, "types": [], "rows": rows, "truncated": False,
            "evaluations": evaluations, "errors": errors}


def open_backtest_source(path: str) -> duckdb.DuckDBPyConnection:
    """The store file a backtest reads, or ``BacktestError`` saying why it cannot."""
    try:
        return open_read_only(path)
    except StoreLocked:
        raise BacktestError(f"--db: {path} is held by a running server; leave out --db to "
                            "backtest through its API (--api)") from None
    except StoreError as exc:
        raise BacktestError(f"--db: cannot open {path}: {exc}") from None
