"""``command``: run a program with the webhook v4 payload as JSON on stdin.

The seeds' "open a follow-up automatically": any script can act on an alert.  A non-zero
exit or a timeout is a failed delivery and is retried.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from typing import Any

from .base import DeliveryError
from .message import Batch, webhook_payload


class CommandNotifier:
    wants_resends = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        command = options["command"]
        self.argv = [command] if isinstance(command, str) else [str(a) for a in command]
        self.timeout = float(options.get("timeout", 30))

    def send(self, batch: Batch) -> None:
        try:
            done = subprocess.run(self.argv, input=json.dumps(webhook_payload(batch)).encode(),
                                  capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"{self.argv[0]}: still running after {self.timeout:g} s") \
                from None
        except OSError as exc:
            raise DeliveryError(f"{self.argv[0]}: {exc.strerror}") from None
        if done.returncode != 0:
            err = done.stderr[-200:].decode("utf-8", "replace").strip()
            raise DeliveryError(f"{self.argv[0]} exited {done.returncode}: {err}")
