"""A test hook for decode worker processes: with this directory on ``PYTHONPATH``, Python loads
it at start-up in every process, and it acts only in decode workers (``-m
otel_hms.receiver.decode_worker``), as ``OTEL_HMS_TEST_WORKER`` says:

- ``hide:PATH``: if PATH exists, the worker's package cannot be found, as when a checkout's
  ``./otel_hms/`` hid the installed one: the worker exits at once with Python's own error on
  stderr (status 1).
- ``hold:PATH``: while PATH exists the worker waits before it imports anything, so a worker
  started then stays "starting" until the test removes PATH.

The server process, the tests and every other program are left alone.
"""

from __future__ import annotations

import os
import sys
import time
from importlib.machinery import ModuleSpec
from typing import Any

WORKER = "otel_hms.receiver.decode_worker"


class _HidePackage:
    """A meta path finder that finds ``otel_hms.receiver`` nowhere."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name == "otel_hms.receiver":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _act(mode: str) -> None:
    action, _, path = mode.partition(":")
    if action == "hide" and os.path.exists(path):
        sys.meta_path.insert(0, _HidePackage)  # type: ignore[arg-type]
    elif action == "hold":
        while os.path.exists(path):
            time.sleep(0.02)


if WORKER in sys.orig_argv:
    _act(os.environ.get("OTEL_HMS_TEST_WORKER", ""))
