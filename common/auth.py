"""The bearer token check of every endpoint (OTLP/gRPC, OTLP/HTTP, the API, the dashboard).

One comparison (constant-time) and one message, so a sender told "no" knows what to send.
"""

from __future__ import annotations

import hmac

UNAUTHORIZED = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"


def bearer_matches(token: str | None, authorization: str | None) -> bool:
    """Whether a request with this ``Authorization`` header may in: always when no token is
    set, else only with exactly ``Bearer <token>``."""
    if token is None:
        return True
    return authorization is not None and hmac.compare_digest(
        authorization.encode(), f"Bearer {token}".encode())
