"""``webhook``: POST Alertmanager's webhook v4 payload, with optional headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import post_json
from .message import Batch, webhook_payload


class WebhookNotifier:
    wants_resends = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.url = str(options["url"])
        self.headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
        self.timeout = float(options.get("timeout", 10))

    def send(self, batch: Batch) -> None:
        post_json(self.url, webhook_payload(batch), self.headers, self.timeout)
