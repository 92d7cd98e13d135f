"""The demo: a story told through the OpenTelemetry API, with its alert rules (and
dashboards) shipped as package data in this directory.

``demo_dir()`` is the packaged directory; ``demo_settings(settings)`` is what
``otel-hms serve --demo`` changes in the server's settings (the demo's rules, added to any
configured); ``start_in_process`` runs the story against the server it is part of.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

from otel_hms.settings import Settings

from .driver import DemoOptions, run


def demo_dir() -> Path:
    """The installed directory holding ``rules.yaml`` (and ``dashboards/``)."""
    return Path(__file__).resolve().parent


def rules_file() -> Path:
    return demo_dir() / "rules.yaml"


def demo_settings(settings: Settings) -> Settings:
    """The settings of ``serve --demo``: the demo's rules after any configured ones, and its
    dashboard unless a dashboards directory is configured."""
    rules = str(rules_file())
    if rules not in settings.rules:
        settings = dataclasses.replace(settings, rules=(*settings.rules, rules))
    if not settings.dashboards:
        settings = dataclasses.replace(settings, dashboards=str(demo_dir() / "dashboards"))
    return settings


def local_address(address: str) -> str:
    """A listen address as a client on this machine reaches it (0.0.0.0 -> 127.0.0.1)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_in_process(settings: Settings, say: Callable[[str], None]
                     ) -> Callable[[], None]:
    """Run the story on a thread against the server of ``settings``; returns its stopper."""
    options = DemoOptions(endpoint=local_address(settings.otlp_grpc),
                          api=local_address(settings.api), token=settings.auth_token)
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(options, stop, say), name="otel-hms-demo",
                              daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(15)

    return stopper


__all__ = ["DemoOptions", "demo_dir", "demo_settings", "rules_file", "run",
           "start_in_process"]
