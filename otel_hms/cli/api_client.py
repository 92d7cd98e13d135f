"""Calls from the ``otel-hms`` command to a running server's API.

DuckDB lets one process hold the store file, so ``otel-hms sql``, ``rules backtest`` and
``export`` ask the server.  One function does the HTTP so every command reports a refusal
and an absent server the same way.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

DEFAULT_API = "127.0.0.1:4320"


class ApiRefused(Exception):
    """The server answered with an error status; ``str(exc)`` is its message."""


class ApiUnreachable(Exception):
    """No server answered at the address; ``str(exc)`` is the reason."""


def api_address(flag: str | None) -> str:
    """``--api`` if given, else ``OTEL_HMS_API``, else the server's default address."""
    return flag or os.environ.get("OTEL_HMS_API") or DEFAULT_API


def api_token(flag: str | None) -> str | None:
    """``--token`` if given, else ``OTEL_HMS_AUTH_TOKEN``."""
    return flag or os.environ.get("OTEL_HMS_AUTH_TOKEN")


def post_json(api: str, path: str, body: dict[str, Any], token: str | None = None,
              timeout: float | None = 120.0) -> dict[str, Any]:
    """POST ``body`` as JSON to ``path`` on the server at ``api`` and return its JSON answer
    (``timeout=None``: wait as long as the server works, as an export may)."""
    url = api if api.startswith(("http://", "https://")) else f"http://{api}"
    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result: dict[str, Any] = json.load(response)
            return result
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise ApiRefused(str(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiUnreachable(str(getattr(exc, "reason", exc))) from None
