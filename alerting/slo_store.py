"""SLOs defined over HTTP (``POST /api/v1/slos``), kept in the store's ``slo_definitions``
table so they survive restarts; rules files define the others."""

from __future__ import annotations

import json
import threading
from typing import Any

import duckdb

from .errors import RuleFileError
from .rules import RuleSet
from .slo import parse_slos

SOURCE = "POST /api/v1/slos"


class SloStore:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._lock = threading.Lock()
        cur = con.cursor()
        try:
            cur.execute("CREATE TABLE IF NOT EXISTS slo_definitions (name VARCHAR PRIMARY KEY, "
                        "definition JSON NOT NULL, updated_at TIMESTAMPTZ NOT NULL)")
        finally:
            cur.close()

    def all(self) -> list[dict[str, Any]]:
        cur = self.con.cursor()
        try:
            rows = cur.execute("SELECT definition FROM slo_definitions ORDER BY name").fetchall()
        finally:
            cur.close()
        return [json.loads(r[0]) for r in rows]

    def put(self, name: str, definition: dict[str, Any]) -> None:
        with self._lock:
            cur = self.con.cursor()
            try:
                cur.execute("INSERT OR REPLACE INTO slo_definitions VALUES (?, ?, now())",
                            [name, json.dumps(definition)])
            finally:
                cur.close()

    def delete(self, name: str) -> bool:
        with self._lock:
            cur = self.con.cursor()
            try:
                found = cur.execute("DELETE FROM slo_definitions WHERE name = ? RETURNING name",
                                    [name]).fetchall()
            finally:
                cur.close()
        return bool(found)


def api_rule_set(definitions: list[dict[str, Any]]) -> RuleSet:
    """The rule set of SLOs posted over HTTP.  No ``${ENV}`` expansion: the text comes from
    a client, and must not read the server's environment."""
    if not definitions:
        return RuleSet()
    slos, groups = parse_slos(definitions, SOURCE)
    return RuleSet(tuple(groups), {}, (), tuple(slos), ())


def validate_posted(definition: Any) -> str:
    """The posted SLO's name, or ``RuleFileError`` saying what is wrong with it."""
    if not isinstance(definition, dict):
        raise RuleFileError(f"{SOURCE}: the body must be one SLO as a JSON object")
    parse_slos([definition], SOURCE)
    return str(definition["name"])
