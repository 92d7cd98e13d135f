"""When the store's disk fails a write: what senders and health checks are told, and when
writing is tried again.

A full disk (or a quota, a read-only remount, an I/O error) fails DuckDB writes in two ways.
A commit whose write-ahead-log append fails is rolled back and the database stays usable.  A
checkpoint that fails (DuckDB checkpoints within a commit once the log passes its
``checkpoint_threshold``, and at shutdown) *invalidates* the database: every statement after
it, reads too, fails with ``FatalException`` until the database is closed and opened again.
Either way nothing committed is lost: the log keeps every commit since the last checkpoint,
and opening the file replays it; the batch whose commit failed was not committed, and its
sender got UNAVAILABLE / 503 and retries.

So while the disk fails, the writer refuses exports (``StoreUnavailable``), ``/healthz`` and
``/readyz`` answer 503 with the reason, and ``Recovery`` tries every second whether the
disk takes a write again; once it does, an invalidated database is reopened, and exports are
taken again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

log = logging.getLogger("otel_hms.store")

# Messages of the operating system's write errors, as DuckDB quotes them.
_DISK_ERRORS = ("No space left on device", "Disk quota exceeded", "Read-only file system",
                "Input/output error")
# What the disk must take before writing is tried again: a commit writes its log entry (a
# group commit of a few hundred thousand points is several MB), a reopen checkpoints.
PROBE_BYTES = 8 * 1024 * 1024
RETRY_SECONDS = 1.0


class StoreUnavailable(Exception):
    """The store cannot write now (its disk failed a write); the message says why and what
    happens next.  Receivers answer UNAVAILABLE / 503 so senders retry, the API 503."""


@dataclass(frozen=True)
class DiskFailure:
    """A failed write of the store: ``detail`` is DuckDB's own words for what failed;
    ``invalidated`` when DuckDB refuses the database until it is reopened."""

    detail: str
    invalidated: bool

    @property
    def reason(self) -> str:
        if self.invalidated:
            return (f"the store's disk failed a write ({self.detail}) and DuckDB closed the "
                    "database; it is reopened once the disk takes writes again (free space "
                    "on it), and nothing committed is lost")
        return (f"the store's disk failed a write ({self.detail}); exports are refused until "
                "it takes writes again (free space on it)")


def disk_failure(exc: BaseException) -> DiskFailure | None:
    """What ``exc`` says of the store's disk, or None when it is another kind of error (bad
    data, a bug) that only the batch at hand should fail for."""
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc)
    fatal = isinstance(exc, duckdb.FatalException)
    if not fatal and not any(e in text for e in _DISK_ERRORS):
        return None
    return DiskFailure(_detail(text), fatal)


def _detail(text: str) -> str:
    """DuckDB's message without its boilerplate: the original error of an invalidated
    database, the file and the system's reason of a failed write."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("Original error:"):
            text = line.removeprefix("Original error:").strip().strip('"')
            break
    else:
        text = lines[0] if lines else text
    for prefix in ("FATAL Error: ", "TransactionContext Error: ", "IO Error: ",
                   "Failed to commit: ", "Failed to create checkpoint because of error: "):
        text = text.replace(prefix, "")
    return text


def disk_takes_writes(directory: str, size: int = PROBE_BYTES) -> str | None:
    """None if ``size`` bytes can be written and synced to a file in ``directory`` (removed
    again), else the system's reason why not."""
    path = os.path.join(directory, f".otel-hms-probe-{os.getpid()}.tmp")
    chunk = bytes(1024 * 1024)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = size
            while left > 0:
                left -= os.write(fd, chunk[:left])
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return None


class Recovery:
    """What the writer runs while its disk fails: has the disk room again, and is the
    database usable (else reopen it)?"""

    def __init__(self, directory: str, reopen: Callable[[], None],
                 usable: Callable[[], bool]) -> None:
        self.directory = directory
        self.reopen = reopen
        self.usable = usable
        self.interval = RETRY_SECONDS

    def attempt(self, failure: DiskFailure) -> bool:
        """True once writing may be tried again."""
        if disk_takes_writes(self.directory) is not None:
            return False
        if failure.invalidated or not self.usable():
            try:
                self.reopen()
            except Exception as exc:  # the disk may fail the replay of the log: next time
                log.warning("reopening the store failed (will retry): %s",
                            str(exc).splitlines()[0])
                return False
            log.info("store reopened after a failed write; taking exports again")
        else:
            log.info("the store's disk takes writes again; taking exports again")
        return True
