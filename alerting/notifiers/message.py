"""What every notifier sends, built once: one ``Batch`` per rule evaluation and notifier.

``webhook_payload`` is Alertmanager's webhook v4 body (the shape webhook receivers already
parse); e-mail, Slack and command notifiers derive their text from the same batch.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_hms.common.times import rfc3339_ms

from ..evaluator import FIRING, Instance, Notice

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Batch:
    """The notices of one rule evaluation for one notifier."""

    receiver: str
    group: str
    alertname: str
    notices: tuple[Notice, ...]
    now: float
    interval: float
    external_url: str



def generator_url(batch: Batch) -> str:
    query = urllib.parse.urlencode({"group": batch.group, "rule": batch.alertname})
    return f"{batch.external_url}/api/v1/rules?{query}"


def status_of(inst: Instance) -> str:
    return "firing" if inst.state == FIRING else "resolved"


def starts_at(inst: Instance) -> float:
    return inst.fired_at if inst.fired_at is not None else inst.active_at


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def webhook_payload(batch: Batch) -> dict[str, Any]:
    """Alertmanager's webhook v4 payload for ``batch``."""
    instances = [n.instance for n in batch.notices]
    alerts = [{
        "status": status_of(i),
        "labels": dict(i.labels),
        "annotations": dict(i.annotations),
        "startsAt": rfc3339_ms(starts_at(i)),
        "endsAt": rfc3339_ms(i.resolved_at) if i.resolved_at is not None and i.state != FIRING
        else ZERO_TIME,
        "generatorURL": generator_url(batch),
        "fingerprint": i.fingerprint,
    } for i in instances]
    firing = any(i.state == FIRING for i in instances)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{batch.alertname}", rulegroup="{batch.group}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": batch.receiver,
        "groupLabels": {"alertname": batch.alertname},
        "commonLabels": _common([i.labels for i in instances]),
        "commonAnnotations": _common([i.annotations for i in instances]),
        "externalURL": batch.external_url,
        "alerts": alerts,
    }


def subject(batch: Batch) -> str:
    """``[FIRING:2] HighLatency (permits)``, or ``[RESOLVED] …`` when nothing fires."""
    firing = sum(1 for n in batch.notices if n.instance.state == FIRING)
    head = f"[FIRING:{firing}]" if firing else "[RESOLVED]"
    return f"{head} {batch.alertname} ({batch.group})"


def text_body(batch: Batch) -> str:
    """A readable plain-text list of the alerts in ``batch``."""
    lines = []
    for n in batch.notices:
        i = n.instance
        lines.append(f"{status_of(i).upper()}: {i.labels.get('alertname', batch.alertname)}")
        for k, v in sorted(i.annotations.items()):
            lines.append(f"  {k}: {v}")
        labels = ", ".join(f"{k}={v}" for k, v in sorted(i.labels.items()))
        lines.append(f"  labels: {labels}")
        if i.value is not None:
            lines.append(f"  value: {i.value:g}")
        lines.append(f"  since: {rfc3339_ms(starts_at(i))}")
        if i.state != FIRING and i.resolved_at is not None:
            lines.append(f"  resolved: {rfc3339_ms(i.resolved_at)}")
        lines.append("")
    lines.append(f"Rule: {generator_url(batch)}")
    return "\n".join(lines) + "\n"
