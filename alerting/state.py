"""Alert instances to and from the store's alert tables (``storage.alert_state``).

The evaluator's ``Instance`` and ``Transition`` become rows (times as UTC timestamps, maps as
key and value lists) and back; the store owns the tables and their transactions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from otel_hms.storage.alert_state import AlertState

from .evaluator import Instance, Transition


def _ts(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _secs(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def _map(m: Mapping[str, str]) -> tuple[list[str], list[str]]:
    keys = sorted(m)
    return keys, [m[k] for k in keys]


class StateStore:
    """Load and save instances per rule key (``group/alertname``); thread-safe."""

    def __init__(self, tables: AlertState) -> None:
        self.tables = tables

    def load(self) -> dict[str, dict[str, Instance]]:
        """Every stored instance, by rule key then fingerprint."""
        out: dict[str, dict[str, Instance]] = {}
        for group, name, fp, labels, notes, state, value, *times in self.tables.load():
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
        self.tables.save(group, alertname, rows, history)

    def forget_except(self, keys: set[str]) -> None:
        """Drop the stored instances of rules no longer loaded (after a reload)."""
        self.tables.forget_except(keys)
