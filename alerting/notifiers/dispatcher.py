"""Delivery off the evaluation path: one queue and worker thread per notifier.

Evaluation only enqueues (never waits), so a slow or failing notifier delays nobody; each
worker retries a batch with doubling backoff up to ``max_attempts``, in order, so a
resolution never overtakes its firing.  Delivered batches are never re-sent, so firing
notifications are not duplicated.  A reload keeps the workers of unchanged notifiers, so
their queued deliveries and retries carry on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_hms.common.durations import parse_seconds

from .base import DeliveryError, Notifier
from .message import Batch

log = logging.getLogger("otel_hms.alerting")
QUEUE_LIMIT = 10_000


@dataclass
class NotifierStats:
    sent: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    last_error: str | None = None
    last_success_at: float | None = None


class Worker:
    """Delivers one notifier's batches in order, retrying each with backoff."""

    def __init__(self, notifier: Notifier, options: dict[str, Any]) -> None:
        self.notifier = notifier
        self.max_attempts = int(options.get("max_attempts", 5))
        self.backoff = parse_seconds(options.get("backoff", "1s"))
        self.stats = NotifierStats()
        self.queue: queue.Queue[Batch | None] = queue.Queue(QUEUE_LIMIT)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"notify-{notifier.name}",
                                       daemon=True)
        self.thread.start()

    def submit(self, batch: Batch) -> None:
        try:
            self.queue.put_nowait(batch)
        except queue.Full:
            self.stats.dropped += 1
            log.error("notifier %s: %d batches queued; dropping one for %s",
                      self.notifier.name, QUEUE_LIMIT, batch.alertname)

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            self._deliver(batch)

    def _deliver(self, batch: Batch) -> None:
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.notifier.send(batch)
            except DeliveryError as exc:
                self.stats.failed_attempts += 1
                self.stats.last_error = str(exc)
                log.warning("notifier %s: attempt %d/%d for %s failed: %s", self.notifier.name,
                            attempt, self.max_attempts, batch.alertname, exc)
                if attempt == self.max_attempts or self.stopping.wait(delay):
                    break
                delay = min(delay * 2, 300.0)
                continue
            except Exception as exc:  # a notifier bug must not kill its worker
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("notifier %s: unexpected error", self.notifier.name)
                break
            self.stats.sent += 1
            self.stats.last_success_at = time.time()
            return
        log.error("notifier %s: gave up on %s after %d attempts", self.notifier.name,
                  batch.alertname, self.max_attempts)


Config = tuple[str, dict[str, Any]]  # (type, options)


class Dispatcher:
    """Routes batches to the workers of named notifiers."""

    def __init__(self, workers: dict[str, tuple[Worker, Config]] | None = None) -> None:
        self.workers = {name: w for name, (w, _) in (workers or {}).items()}
        self.configs = {name: c for name, (_, c) in (workers or {}).items()}

    def replaced(self, configs: dict[str, Config],
                 build: Callable[[str, str, dict[str, Any]], Notifier]) -> Dispatcher:
        """A dispatcher for ``configs`` (after a reload).  Unchanged notifiers keep their
        worker, queue and retries; removed or changed ones finish what is queued."""
        workers: dict[str, tuple[Worker, Config]] = {}
        for name, config in configs.items():
            if self.configs.get(name) == config:
                workers[name] = (self.workers.pop(name), config)
            else:
                workers[name] = (Worker(build(name, *config), config[1]), config)
        self.stop(5.0)  # only the workers not carried over
        return Dispatcher(workers)

    def submit(self, names: list[str], batch: Batch) -> None:
        for name in names:
            worker = self.workers.get(name)
            if worker is None:
                continue
            notices = batch.notices if worker.notifier.wants_resends else tuple(
                n for n in batch.notices if n.reason != "resend")
            if notices:
                worker.submit(Batch(name, batch.group, batch.alertname, notices, batch.now,
                                    batch.interval, batch.external_url))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: {"type": type(w.notifier).__name__, **w.stats.__dict__}
                for name, w in self.workers.items()}

    def stop(self, timeout: float = 5.0) -> None:
        for w in self.workers.values():
            w.queue.put(None)
        deadline = time.monotonic() + timeout
        for w in self.workers.values():
            w.thread.join(max(0.0, deadline - time.monotonic()))
            w.stopping.set()
