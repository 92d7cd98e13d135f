"""What a notifier is, and the one HTTP helper the HTTP-based ones share."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from .message import Batch


class DeliveryError(Exception):
    """One delivery attempt failed; the dispatcher retries with backoff."""


class Notifier(Protocol):
    name: str
    #: whether periodic re-sends of unchanged alerts are wanted (Alertmanager only)
    wants_resends: bool

    def send(self, batch: Batch) -> None: ...


def post_json(url: str, body: Any, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``body`` as JSON; anything but a 2xx answer is a ``DeliveryError``."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "otel-hms", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode("utf-8", "replace")
        raise DeliveryError(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url}: {reason}") from None
