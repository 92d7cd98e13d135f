"""``slack``: a message in Slack's incoming-webhook format (text plus one attachment)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..evaluator import FIRING
from .base import post_json
from .message import Batch, subject, text_body


def slack_message(batch: Batch, channel: str | None, username: str | None) -> dict[str, Any]:
    firing = any(n.instance.state == FIRING for n in batch.notices)
    message: dict[str, Any] = {
        "text": subject(batch),
        "attachments": [{"color": "danger" if firing else "good", "title": subject(batch),
                         "text": text_body(batch), "fallback": subject(batch)}],
    }
    if channel:
        message["channel"] = channel
    if username:
        message["username"] = username
    return message


class SlackNotifier:
    wants_resends = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.url = str(options["url"])
        self.channel = options.get("channel")
        self.username = options.get("username")
        self.timeout = float(options.get("timeout", 10))

    def send(self, batch: Batch) -> None:
        post_json(self.url, slack_message(batch, self.channel, self.username), {},
                  self.timeout)
