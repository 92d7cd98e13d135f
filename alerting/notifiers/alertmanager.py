"""``alertmanager``: push to an Alertmanager's ``/api/v2/alerts`` the way Prometheus does.

Firing alerts are re-sent every resend delay with ``endsAt = now + 4 × max(interval, resend
delay)``, so Alertmanager keeps them while we keep sending and expires them if we stop;
resolutions go at once with ``endsAt`` = the resolution time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_hms.common.times import rfc3339_ms

from ..evaluator import DEFAULT_RESEND_DELAY, FIRING
from .base import post_json
from .message import Batch, generator_url, starts_at


def alertmanager_alerts(batch: Batch, resend_delay: float) -> list[dict[str, Any]]:
    valid_until = batch.now + 4 * max(batch.interval, resend_delay)
    out = []
    for n in batch.notices:
        i = n.instance
        ends = valid_until if i.state == FIRING or i.resolved_at is None else i.resolved_at
        out.append({"labels": dict(i.labels), "annotations": dict(i.annotations),
                    "startsAt": rfc3339_ms(starts_at(i)), "endsAt": rfc3339_ms(ends),
                    "generatorURL": generator_url(batch)})
    return out


class AlertmanagerNotifier:
    wants_resends = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.url = str(options["url"]).rstrip("/") + "/api/v2/alerts"
        self.headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
        self.timeout = float(options.get("timeout", 10))
        self.resend_delay = DEFAULT_RESEND_DELAY

    def send(self, batch: Batch) -> None:
        post_json(self.url, alertmanager_alerts(batch, self.resend_delay), self.headers,
                  self.timeout)
