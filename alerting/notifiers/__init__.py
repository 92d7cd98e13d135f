"""Notifiers by kind; ``option_problems`` checks a ``notifiers:`` entry, ``build`` makes one.

Every kind also takes ``max_attempts`` (default 5) and ``backoff`` (first retry delay,
doubling, default 1s), applied by the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otel_hms.common.durations import parse_seconds

from .alertmanager import AlertmanagerNotifier
from .base import DeliveryError, Notifier
from .command import CommandNotifier
from .email import EmailNotifier
from .message import Batch, webhook_payload
from .slack import SlackNotifier
from .webhook import WebhookNotifier

_COMMON = ("timeout", "max_attempts", "backoff")
# kind -> (class, required options, optional options)
KINDS: dict[str, tuple[Callable[[str, Mapping[str, Any]], Notifier], tuple[str, ...],
                       tuple[str, ...]]] = {
    "webhook": (WebhookNotifier, ("url",), ("headers",)),
    "alertmanager": (AlertmanagerNotifier, ("url",), ("headers",)),
    "slack": (SlackNotifier, ("url",), ("channel", "username")),
    "email": (EmailNotifier, ("to", "from", "smarthost"),
              ("starttls", "ca_file", "username", "password")),
    "command": (CommandNotifier, ("command",), ()),
}


def option_problems(kind: str, options: Mapping[str, Any], where: str) -> list[str]:
    """Every problem with a notifier's options, each naming its field (none: it is fine)."""
    if kind not in KINDS:
        return [f"{where}.type: unknown notifier type {kind!r}; use one of " + ", ".join(KINDS)]
    _, required, optional = KINDS[kind]
    problems = [f"{where}.{key}: is required for a {kind} notifier"
                for key in required if options.get(key) in (None, "", [])]
    problems += [f"{where}: unknown field {key!r}; a {kind} notifier takes "
                 + ", ".join(required + optional + _COMMON)
                 for key in options if key not in required + optional + _COMMON]
    if "url" in options and not str(options["url"]).startswith(("http://", "https://")):
        problems.append(f"{where}.url: must be an http:// or https:// URL "
                        f"(got {options['url']!r})")
    if kind == "email" and options.get("smarthost") \
            and not str(options["smarthost"]).rpartition(":")[2].isdigit():
        problems.append(f"{where}.smarthost: expected HOST:PORT (got {options['smarthost']!r})")
    if "headers" in options and not isinstance(options["headers"], dict):
        problems.append(f"{where}.headers: must be a mapping of header names to values")
    if kind == "command" and options.get("command") \
            and not isinstance(options["command"], str | list):
        problems.append(f"{where}.command: must be a program path or a list [program, "
                        "args...]")
    try:
        if "max_attempts" in options and int(options["max_attempts"]) < 1:
            raise ValueError
        if "backoff" in options:
            parse_seconds(options["backoff"])
        if "timeout" in options and parse_seconds(options["timeout"]) <= 0:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"{where}: max_attempts must be >= 1, backoff and timeout "
                        "durations like 1s or 500ms")
    return problems


def build(name: str, kind: str, options: Mapping[str, Any]) -> Notifier:
    opts = dict(options)
    if "timeout" in opts:
        opts["timeout"] = parse_seconds(opts["timeout"])
    return KINDS[kind][0](name, opts)


__all__ = ["Batch", "DeliveryError", "KINDS", "Notifier", "build", "option_problems",
           "webhook_payload"]
