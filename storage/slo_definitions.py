"""SLOs posted over HTTP (``POST /api/v1/slos``), kept in ``slo_definitions`` so they survive
restarts; each is its JSON definition under its name."""

from __future__ import annotations

import json
import threading
from typing import Any

from .connection import Cursors


class SloDefinitions:
    def __init__(self, con: Cursors) -> None:
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
