"""``otel-hms demo``: run the story against a server and say what its alerts do.

The two services export over OTLP/gRPC every ``interval`` seconds, each with its own
``MeterProvider`` (as two processes would); the console shows the story's turns and every
alert that starts firing or resolves, read from ``GET /api/v1/alerts``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .scenario import Story

TICK = 0.5


@dataclass(frozen=True)
class DemoOptions:
    """Where to send and ask, for how long (None: until stopped), how often to export."""

    endpoint: str = "127.0.0.1:4317"
    api: str = "127.0.0.1:4320"
    duration: float | None = None
    interval: float = 2.0
    token: str | None = None


class AlertWatch:
    """Polls the API's alerts and reports each change of a firing alert."""

    def __init__(self, api: str, token: str | None, say: Callable[[str], None]) -> None:
        self.url = f"http://{api}/api/v1/alerts"
        self.token = token
        self.say = say
        self.firing: dict[tuple[str, str], dict[str, Any]] = {}
        self.unreachable = False

    def fetch(self) -> list[dict[str, Any]] | None:
        request = urllib.request.Request(self.url)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                alerts: list[dict[str, Any]] = json.load(r)["alerts"]
                return alerts
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            if not self.unreachable:
                self.say(f"cannot read alerts from {self.url} ({exc}); is the server "
                         "running with --rules or --demo?")
            self.unreachable = True
            return None

    def poll(self, elapsed: float) -> None:
        alerts = self.fetch()
        if alerts is None:
            return
        self.unreachable = False
        now = {(a["alertname"], json.dumps(a["labels"], sort_keys=True)): a
               for a in alerts if a["state"] == "firing"}
        for key, alert in now.items():
            if key not in self.firing:
                summary = alert["annotations"].get("summary", "")
                self.say(f"[{elapsed:5.0f}s] FIRING   {alert['alertname']} "
                         f"{_labels(alert['labels'])}: {summary}")
        for key, alert in self.firing.items():
            if key not in now:
                self.say(f"[{elapsed:5.0f}s] RESOLVED {alert['alertname']} "
                         f"{_labels(alert['labels'])}")
        self.firing = now


def _labels(labels: dict[str, str]) -> str:
    keep = {k: v for k, v in labels.items() if k not in ("alertname",)}
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(keep.items())) + "}"


def run(options: DemoOptions, stop: threading.Event | None = None,
        say: Callable[[str], None] = print) -> None:
    """Tell the story until ``duration`` passes or ``stop`` is set; flush before returning."""
    from otel_hms.sdk.instrument import meter_provider  # the SDK loads only when a demo runs

    stop = stop or threading.Event()
    headers = {"authorization": f"Bearer {options.token}"} if options.token else None
    providers = [meter_provider(name, endpoint=options.endpoint, protocol="grpc",
                                interval=options.interval, headers=headers,
                                resource_attributes={"deployment.environment": "demo"})
                 for name in ("permits", "case-management")]
    story = Story.start(providers[0].get_meter("otel_hms.demo.permits"),
                        providers[1].get_meter("otel_hms.demo.cases"))
    watch = AlertWatch(options.api, options.token, say)
    say(f"otel-hms demo: services permits and case-management export to {options.endpoint} "
        f"every {options.interval:g} s; alerts from http://{options.api}")
    started = time.monotonic()
    last_poll = 0.0
    try:
        elapsed = 0.0
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if options.duration is not None and elapsed >= options.duration:
                break
            for event in Story.events(elapsed, TICK):
                say(f"[{elapsed:5.0f}s] {event}")
            story.tick(elapsed, TICK)
            if elapsed - last_poll >= 2.0:
                watch.poll(elapsed)
                last_poll = elapsed
            stop.wait(max(0.0, started + elapsed + TICK - time.monotonic()))
    finally:
        for provider in providers:
            provider.shutdown()
    say(f"otel-hms demo: stopped after {elapsed:.0f} s")
