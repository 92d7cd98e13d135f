"""One time limit per request, and the way to stop a query early.

A ``Deadline`` starts when a request arrives and covers all of it: waiting for a worker
thread, running the query, fetching and encoding the answer.  While DuckDB works, a timer
interrupts the cursor when the time is up; between chunks of the answer, ``check`` raises.
``cancel`` stops the work at once (the HTTP client went away): DuckDB's ``interrupt`` on
every cursor the deadline watches.

Errors, all ``QueryError`` (the message says why; HTTP 400 unless noted):
``QueryTimedOut`` past the limit, ``QueryCancelled`` stopped early, ``TooLarge`` (413) over
``sql_max_answer_bytes`` or DuckDB's ``memory_limit``; and, not a ``QueryError``,
``StoreUnavailable`` (503) while DuckDB has the store closed after a failed disk write.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import duckdb

from otel_hms.storage.disk_failure import StoreUnavailable, disk_failure

from .sql_guard import refusal


class QueryError(Exception):
    """The query was refused or failed; the message says why (HTTP 400)."""


class QueryCancelled(QueryError):
    """The work was stopped before the time limit (the client disconnected)."""


class TooLarge(QueryError):
    """The answer, or the memory the query needs, is over a limit the message names (413)."""


class QueryTimedOut(QueryError):
    """The request's time limit passed before its answer was ready."""


class Deadline:
    """``seconds`` from now; ``setting`` names the limit in messages."""

    def __init__(self, seconds: float, setting: str = "sql_timeout_seconds") -> None:
        self.seconds, self.setting = seconds, setting
        self.at = time.monotonic() + seconds
        self.cancelled: str | None = None  # why, once cancel() was called
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> QueryTimedOut:
        return QueryTimedOut(f"query exceeded the time limit of {self.seconds:g} s "
                          f"(setting {self.setting})")

    def check(self) -> None:
        """Raise if the work should stop: cancelled, or past the limit."""
        if self.cancelled is not None:
            raise QueryCancelled(f"query cancelled: {self.cancelled}")
        if time.monotonic() >= self.at:
            raise self.expired()

    def cancel(self, why: str) -> None:
        """Stop the work now: every watched cursor is interrupted."""
        with self._lock:
            self.cancelled = why
            cursors = list(self._cursors)
        for cursor in cursors:
            cursor.interrupt()

    @contextlib.contextmanager
    def watching(self, cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Interrupt ``cursor`` at the deadline or on ``cancel``; DuckDB errors become
        ``QueryError`` with the clear message where there is one."""
        self.check()
        with self._lock:
            self._cursors.append(cursor)
        timer = threading.Timer(self.remaining(), cursor.interrupt)
        timer.start()
        try:
            yield
        except duckdb.InterruptException:
            self.check()
            raise self.expired() from None
        except duckdb.OutOfMemoryException as exc:
            raise TooLarge("the query needs more memory than the store's memory_limit allows "
                           f"(DuckDB: {str(exc).splitlines()[0]}); filter or aggregate more "
                           "in SQL, or raise the memory_limit setting") from None
        except duckdb.FatalException as exc:  # an invalidated store: 503 with the reason
            failure = disk_failure(exc)
            raise StoreUnavailable(failure.reason if failure else str(exc)) from None
        except duckdb.Error as exc:
            raise QueryError(refusal(exc) or str(exc)) from None
        finally:
            timer.cancel()
            with self._lock:
                self._cursors.remove(cursor)


@contextlib.contextmanager
def time_limited(cursor: duckdb.DuckDBPyConnection, limit: float | Deadline) -> Iterator[None]:
    """Interrupt what ``cursor`` runs at ``limit`` (seconds from now, or a ``Deadline``);
    DuckDB errors become ``QueryError``."""
    deadline = limit if isinstance(limit, Deadline) else Deadline(limit)
    with deadline.watching(cursor):
        yield
