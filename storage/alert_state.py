"""Alert state in the store: ``alerts`` (current instances) and ``alert_history`` (transitions).

Alerting writes them after every evaluation, one transaction per rule, and reads them back
at start so a restart continues ``for`` timers and firing alerts without re-notifying or
falsely resolving.  Both tables are plain SQL for users.  Rows go in and come out in the
tables' column order; maps travel as (keys, values) lists.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .connection import Cursors

TABLES = {
    "alerts": """
        rule_group VARCHAR NOT NULL,
        alertname VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        labels MAP(VARCHAR, VARCHAR) NOT NULL,
        annotations MAP(VARCHAR, VARCHAR) NOT NULL,
        state VARCHAR NOT NULL,
        value DOUBLE,
        active_at TIMESTAMPTZ NOT NULL,
        fired_at TIMESTAMPTZ,
        resolved_at TIMESTAMPTZ,
        keep_firing_since TIMESTAMPTZ,
        last_sent_at TIMESTAMPTZ,
        last_evaluated_at TIMESTAMPTZ
    """,
    "alert_history": """
        time TIMESTAMPTZ NOT NULL,
        rule_group VARCHAR NOT NULL,
        alertname VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        labels MAP(VARCHAR, VARCHAR) NOT NULL,
        from_state VARCHAR NOT NULL,
        to_state VARCHAR NOT NULL,
        value DOUBLE
    """,
}

TIME_COLUMNS = ("active_at", "fired_at", "resolved_at", "keep_firing_since", "last_sent_at",
                "last_evaluated_at")


def install(con: Cursors) -> None:
    """Create the alert tables if missing (safe on every start)."""
    cur = con.cursor()
    try:
        for name, columns in TABLES.items():
            cur.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    finally:
        cur.close()


class AlertState:
    """The alert tables: load every instance, replace a rule's, drop those of old rules;
    thread-safe, each call on a cursor of its own."""

    def __init__(self, con: Cursors) -> None:
        self.con = con
        self._lock = threading.Lock()
        install(con)

    def load(self) -> list[tuple[Any, ...]]:
        """Every row of ``alerts``: group, alertname, fingerprint, labels, annotations,
        state, value, then ``TIME_COLUMNS``."""
        cur = self.con.cursor()
        try:
            return cur.execute(
                "SELECT rule_group, alertname, fingerprint, labels, annotations, state, value, "
                + ", ".join(TIME_COLUMNS) + " FROM alerts").fetchall()
        finally:
            cur.close()

    def save(self, group: str, alertname: str, rows: Sequence[tuple[Any, ...]],
             history: Sequence[tuple[Any, ...]]) -> None:
        """Replace the rule's rows of ``alerts`` and append to ``alert_history``, in one
        transaction."""
        with self._lock:
            cur = self.con.cursor()
            try:
                cur.execute("BEGIN")
                cur.execute("DELETE FROM alerts WHERE rule_group = ? AND alertname = ?",
                            [group, alertname])
                if rows:
                    cur.executemany(
                        "INSERT INTO alerts VALUES (?, ?, ?, MAP(?::VARCHAR[], ?::VARCHAR[]), "
                        "MAP(?::VARCHAR[], ?::VARCHAR[]), ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                if history:
                    cur.executemany(
                        "INSERT INTO alert_history VALUES (?, ?, ?, ?, "
                        "MAP(?::VARCHAR[], ?::VARCHAR[]), ?, ?, ?)", history)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def forget_except(self, keys: set[str]) -> None:
        """Drop the rows of rules (``group/alertname``) not in ``keys``."""
        with self._lock:
            cur = self.con.cursor()
            try:
                for group, name in cur.execute(
                        "SELECT DISTINCT rule_group, alertname FROM alerts").fetchall():
                    if f"{group}/{name}" not in keys:
                        cur.execute("DELETE FROM alerts WHERE rule_group = ? AND alertname = ?",
                                    [group, name])
            finally:
                cur.close()
