"""What user SQL may be: one SELECT that writes nothing and calls nothing with side effects.

This is the clear-message half of "checked twice"; the database enforces the rest (see
``read_only``: a read-only transaction, a locked configuration, no external access).  The
statement is read by DuckDB's own parser (``json_serialize_sql``), so quoting, odd casing,
comments and schema-qualified names (``system.main.checkpoint``) change nothing: the parse
tree is walked for data-modifying query nodes (``WITH x AS (DELETE … RETURNING …)``) and
for every function called, anywhere in it.

Built-in table functions are refused unless they are known to only read (``range``,
``unnest``, the ``duckdb_*`` catalogue …): one that a later DuckDB adds is refused until it
is looked at.  The store's own table macros (``rate``, ``histogram_quantile`` …) are not
built-ins and stay allowed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import duckdb

READ_ONLY = ("only read-only SELECT queries are allowed here ({what}); the store is written "
             "by the receiver alone")

# Built-in table functions user SQL may call: each only reads (or makes up) rows.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "summary", "json_each", "json_tree",
    "pg_timezone_names", "icu_calendar_names", "test_all_types", "test_vector_types",
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies",
    "duckdb_functions", "duckdb_indexes", "duckdb_keywords", "duckdb_memory",
    "duckdb_optimizers", "duckdb_schemas", "duckdb_sequences", "duckdb_settings",
    "duckdb_tables", "duckdb_temporary_files", "duckdb_types", "duckdb_views",
    "pragma_collations", "pragma_database_size", "pragma_metadata_info", "pragma_platform",
    "pragma_show", "pragma_storage_info", "pragma_table_info", "pragma_version",
})
# Why a refused function is refused; a built-in table function not named here gets the
# generic reason.
REFUSED_FUNCTIONS = {
    "checkpoint": "writes the store's checkpoint",
    "force_checkpoint": "writes the store's checkpoint",
    "query": "runs SQL built from a string",
    "query_table": "runs SQL built from a string",
    "json_execute_serialized_sql": "runs SQL built from a string",
    "nextval": "changes a sequence",
    "setval": "changes a sequence",
    "currval": "reads a sequence's session state",
    "write_log": "writes DuckDB's log",
    "enable_logging": "changes the server's settings",
    "disable_logging": "changes the server's settings",
    "enable_profiling": "changes the server's settings",
    "disable_profiling": "changes the server's settings",
    "truncate_duckdb_logs": "deletes DuckDB's log",
    "add_grammar_extension": "changes the server's SQL parser",
    "remove_grammar_extension": "changes the server's SQL parser",
}
_READING_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE",
                            "CTE_NODE"})


class RefusedSql(Exception):
    """The statement is not a read-only query; the message says what is refused and why,
    ``reason`` the same in a few words (``got DELETE inside the query``)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def _not_read_only(what: str) -> RefusedSql:
    return RefusedSql(READ_ONLY.format(what=what), what)


@functools.cache
def builtin_table_functions() -> frozenset[str]:
    """Every table function DuckDB itself defines (a fresh in-memory database's)."""
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        rows = con.execute("SELECT DISTINCT function_name FROM duckdb_functions() "
                           "WHERE function_type = 'table'").fetchall()
    finally:
        con.close()
    return frozenset(str(r[0]).lower() for r in rows)


def check_statement(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ``RefusedSql`` unless ``sql`` is one SELECT that only reads."""
    try:
        statements = cursor.extract_statements(sql)
    except duckdb.Error as exc:
        raise RefusedSql(str(exc)) from None
    if len(statements) != 1:
        raise RefusedSql(f"send exactly one statement (got {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise _not_read_only(f"got {kind.name}")
    check_tree(parse_tree(cursor, sql))


def parse_tree(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """DuckDB's parse tree of the SELECT ``sql``, as JSON."""
    row = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise _not_read_only(str(tree.get("error_message", "not a SELECT")))
    return tree


def check_tree(tree: Any) -> None:
    """Refuse a parse tree holding a data-modifying query or a refused function call."""
    for node in _dicts(tree):
        kind = node.get("type")
        if isinstance(kind, str) and kind.endswith("_NODE") and kind not in _READING_NODES:
            verb = kind.removesuffix("_NODE").removesuffix("_QUERY")
            raise _not_read_only(f"got {verb} inside the query")
        if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
            name = str(node["function"].get("function_name", "")).lower()
            if name in builtin_table_functions() and name not in ALLOWED_TABLE_FUNCTIONS:
                _refuse(name, REFUSED_FUNCTIONS.get(name) or _file_reason(name) or (
                    "is not one of the table functions that only read (allowed: range, "
                    "generate_series, unnest, the duckdb_* catalogue and the store's own "
                    "views and macros)"))
        if node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in REFUSED_FUNCTIONS:
                _refuse(name, REFUSED_FUNCTIONS[name])


def _file_reason(name: str) -> str | None:
    if name.startswith(("read_", "parquet_", "sniff_")) or name in ("glob", "which_secret"):
        return "reads files on the server's machine"
    if name.endswith("_scan") or name == "python_map_function":
        return "reads the server's memory"
    return None


def refusal(exc: duckdb.Error) -> str | None:
    """The clear message for a refusal the database itself made, else None."""
    text = str(exc)
    if isinstance(exc, duckdb.TransactionException) and "read-only mode" in text:
        return READ_ONLY.format(what=f"DuckDB: {text.splitlines()[0]}")
    if "the configuration has been locked" in text:
        return ("queries here cannot change the server's settings (DuckDB: "
                f"{text.splitlines()[0]})")
    return None


def _refuse(name: str, why: str) -> None:
    raise RefusedSql(f"{name}() is not allowed in queries here: it {why}; the SQL endpoint "
                     "and alert rules only read the store", f"{name}() {why}")


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``value``, depth first, without recursion (trees can be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
