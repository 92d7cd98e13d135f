"""Alert state in the store: ``alerts`` (current instances) and ``alert_history`` (transitions).

Written after every evaluation, in one transaction per rule, through a cursor of the server's
connection; read back at start so a restart continues ``for`` timers and firing alerts
without re-notifying or falsely resolving.  Both tables are plain SQL for users.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from .evaluator import Instance, Transition

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

_TIME_FIELDS = ("active_at", "fired_at", "resolved_at", "keep_firing_since", "last_sent_at",
                "last_evaluated_at")


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the alert tables if missing (safe on every start)."""
    cur = con.cursor()
    try:
        for name, columns in TABLES.items():
            cur.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    finally:
        cur.close()


def _ts(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _secs(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def _map(m: Mapping[str, str]) -> tuple[list[str], list[str]]:
    keys = sorted(m)
    return keys, [m[k] for k in keys]


class StateStore:
    """Load and save instances per rule key (``group/alertname``); thread-safe."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._lock = threading.Lock()
        install(con)

    def load(self) -> dict[str, dict[str, Instance]]:
        """Every stored instance, by rule key then fingerprint."""
        cur = self.con.cursor()
        try:
            rows = cur.execute(
                "SELECT rule_group, alertname, fingerprint, labels, annotations, state, value, "
                + ", ".join(_TIME_FIELDS) + " FROM alerts").fetchall()
        finally:
            cur.close()
        out: dict[str, dict[str, Instance]] = {}
        for group, name, fp, labels, notes, state, value, *times in rows:
            secs = [_secs(t) for t in times]
            active_at = secs[0] if secs[0] is not None else 0.0
            out.setdefault(f"{group}/{name}", {})[fp] = Instance(
                fp, dict(labels), dict(notes), state, value, active_at, *secs[1:])
        return out

    def save(self, group: str, alertname: str, instances: Iterable[Instance],
             transitions: Iterable[Transition]) -> None:
        """Replace the rule's instances and append its transitions, in one transaction."""
        rows = [(group, alertname, i.fingerprint, *_map(i.labels), *_map(i.annotations),
                 i.state, i.value, _ts(i.active_at), _ts(i.fired_at), _ts(i.resolved_at),
                 _ts(i.keep_firing_since), _ts(i.last_sent_at), _ts(i.last_evaluated_at))
                for i in instances]
        history = [(_ts(t.at), group, alertname, t.fingerprint, *_map(t.labels), t.from_state,
                    t.to_state, t.value) for t in transitions]
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
        """Drop the stored instances of rules no longer loaded (after a reload)."""
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
