"""Rule SQL against the store: rows to ``Sample``s, through the read-only, time-limited path.

``now()`` (and ``current_timestamp``) in rule SQL is replaced by the evaluation time, so a
slotted evaluation, a rule test and a backtest all see the clock they are evaluated at.
One row is one instance: its string columns are its labels, its value is the column named
``value`` or else the only numeric one; the condition, if any, becomes an extra column.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import duckdb

from otel_hms.query.read_only import QueryError, run_query
from otel_hms.storage.connection import Cursors

from .evaluator import QueryFailed, Sample
from .rules import Rule

ACTIVE_COLUMN = "__otel_hms_active"
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
POINT_VIEWS = {"otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram",
               "otel_metrics_exponential_histogram", "otel_metrics_exp_histogram",
               "otel_metrics_summary", "otel_points"}
_CLOCK_IDENTIFIERS = {"now", "current_timestamp", "get_current_timestamp",
                      "transaction_timestamp"}


def timestamp_literal(now: float) -> str:
    iso = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
    return f"TIMESTAMPTZ '{iso}'"


def pin_clock(sql: str, now: float) -> str:
    """``sql`` with every ``now()``/``current_timestamp`` replaced by a literal ``now``."""
    literal = timestamp_literal(now)
    tokens = duckdb.tokenize(sql)
    out, last = [], 0
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        word = sql[start:end].rstrip()
        if kind not in (duckdb.token_type.identifier, duckdb.token_type.keyword):
            continue
        if word.lower() not in _CLOCK_IDENTIFIERS:
            continue
        stop = start + len(word)
        rest = sql[stop:]
        stripped = rest.lstrip()
        if stripped.startswith("("):
            after = stripped[1:].lstrip()
            if not after.startswith(")"):
                continue
            stop = len(sql) - len(after) + 1
        elif word.lower() != "current_timestamp":
            continue
        if start > 0 and sql[start - 1] == ".":
            continue
        out.append(sql[last:start])
        out.append(literal)
        last = stop
    out.append(sql[last:])
    return "".join(out)


def hide_future(sql: str, now: float) -> str:
    """``sql`` with each point view replaced by its rows up to ``now``.

    Replays (rule tests, backtests) evaluate at past times over a store that already holds
    later points; rule SQL rarely bounds time from above, so the views are bounded here.
    """
    tokens = duckdb.tokenize(sql)
    out, last = [], 0
    for i, (start, kind) in enumerate(tokens):
        if kind != duckdb.token_type.identifier:
            continue
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        word = sql[start:end].rstrip()
        if word.lower() not in POINT_VIEWS or (start > 0 and sql[start - 1] == "."):
            continue
        following = sql[start + len(word):].lstrip()
        if following.startswith("."):  # otel_metrics_gauge.Value: a column reference
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        aliased = nxt is not None and nxt[1] == duckdb.token_type.identifier or \
            following[:3].upper() == "AS "
        bounded = (f"(SELECT * FROM main.{word} WHERE TimeUnix <= {timestamp_literal(now)})"
                   + ("" if aliased else f" AS {word}"))
        out.extend([sql[last:start], bounded])
        last = start + len(word)
    out.append(sql[last:])
    return "".join(out)


def rule_sql(rule: Rule, now: float, replaying: bool = False) -> str:
    """The statement actually run for ``rule`` at ``now`` (hiding later points in replays)."""
    body = rule.sql.strip().rstrip(";")
    if replaying:
        body = hide_future(body, now)
    if rule.condition is None:
        return pin_clock(body, now)
    return pin_clock(f"SELECT *, coalesce(({rule.condition}), false) AS {ACTIVE_COLUMN} "
                     f"FROM ({body}) AS rule_rows", now)


def _is_numeric(type_name: str) -> bool:
    return type_name.upper().split("(")[0] in _NUMERIC


def value_column(columns: Sequence[str], types: Sequence[str]) -> int | None:
    """Index of the value column: ``value``, else the only numeric column, else None."""
    for i, name in enumerate(columns):
        if name.lower() == "value":
            if not _is_numeric(types[i]):
                raise QueryFailed(f"column {name} is {types[i]}; the value column must be "
                                  "numeric (CAST it, or name another column value)")
            return i
    numeric = [i for i, t in enumerate(types) if _is_numeric(t) and columns[i] != ACTIVE_COLUMN]
    if len(numeric) > 1:
        names = ", ".join(columns[i] for i in numeric)
        raise QueryFailed(f"several numeric columns ({names}): name the value column `value`")
    return numeric[0] if numeric else None


def _number(v: object) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):  # run_query's JSON-safe NaN/Infinity, or a DECIMAL
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        return special[v] if v in special else float(v)
    if isinstance(v, int | float):
        return float(v)
    raise QueryFailed(f"value {v!r} is not a number")


def samples_from(columns: Sequence[str], types: Sequence[str],
                 rows: Sequence[Sequence[object]]) -> list[Sample]:
    vi = value_column(columns, types)
    label_cols = [i for i, t in enumerate(types)
                  if t.upper() == "VARCHAR" and i != vi and columns[i] != ACTIVE_COLUMN]
    ai = columns.index(ACTIVE_COLUMN) if ACTIVE_COLUMN in columns else None
    out = []
    for row in rows:
        labels = {columns[i]: str(row[i]) for i in label_cols if row[i] not in (None, "")}
        value = _number(row[vi]) if vi is not None else None
        active = bool(row[ai]) if ai is not None else True
        out.append(Sample(labels, value, active))
    return out


class SqlQuery:
    """The query function the evaluator calls for rules backed by SQL on ``con``."""

    def __init__(self, con: Cursors, timeout: float, row_limit: int,
                 replaying: bool = False) -> None:
        self.con, self.timeout, self.row_limit = con, timeout, row_limit
        self.replaying = replaying

    def __call__(self, rule: Rule, now: float) -> list[Sample]:
        try:
            result = run_query(self.con, rule_sql(rule, now, self.replaying), self.timeout,
                               self.row_limit)
        except QueryError as exc:
            raise QueryFailed(str(exc).splitlines()[0]) from None
        if result.truncated:
            raise QueryFailed(f"more than {self.row_limit} rows (setting sql_row_limit); "
                              "aggregate in SQL so each row is one alert")
        return samples_from(result.columns, result.types, result.rows)
