"""Decode requests in worker processes, so decoding runs beside the writer instead of under
the server's GIL.

Each worker (``decode_worker``) is a child process with its own ``Decoder`` and series
caches, fed request bytes over a pipe and answering with the pickled ``DecodedBatch``; the
server keeps the one DuckDB writer.  Series ids are a hash of the series identity, so every
worker computes the same ids; a worker sends a series' row until the server tells it the
series is committed (``on_commit``), and the writer drops rows of series it already has.
A row crosses the pipe once: the server keeps it, and puts it back into each batch that
needs it until the commit, so batches look exactly as they would decoded in-process.  A
series the writer refused (cardinality limits) is not committed: the worker is told to send
its row again with its next points, and the server forgets the row it kept.

Workers start as ``python -P -m otel_hms.receiver.decode_worker``: ``-P`` keeps the working
directory off ``sys.path``, so a checkout's ``./otel_hms/`` (``serve`` run from a clone's root)
cannot hide the installed package.  A worker takes requests once it has answered the hello
with ``READY`` (everything imported); its stderr is drained by a thread, logged line by line
and its last lines kept, so a chatty worker never blocks on a full pipe.

One request at a time per worker.  A caller waits for a free worker, in turn (first come,
first served: a caller arriving as a worker frees up must not overtake those waiting, or
under steady load one of them waits out ``timeout``), but at most ``max_waiting`` callers
do: past that, and when the pool is closing, ``decode`` raises ``Overloaded`` (UNAVAILABLE /
503) so the sender retries.  A worker that dies (seen by its
request or by its stderr closing) or does not answer within ``timeout`` fails its request the
same way and is replaced by the supervisor thread, after a short back-off when deaths repeat.
``unavailable`` says why no worker can take a request (for ``/healthz``).  Workers that die
``RESTART_LIMIT`` times within ``RESTART_WINDOW`` seconds will not heal by restarting: the pool
gives up, logs an ERROR with the last one's stderr and calls ``on_failure``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import IO, Any

import numpy as np

from otel_hms.storage.arrow_batches import from_ipc
from otel_hms.storage.batch import DecodedBatch, SeriesRow

from .decode_worker import READY
from .errors import Overloaded

log = logging.getLogger("otel_hms.receiver")

WORKER_COMMAND = [sys.executable, "-P", "-m", "otel_hms.receiver.decode_worker"]
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
_RESTART_DELAYS = (0.0, 0.5, 1.0, 2.0)  # before a restart, by deaths in the window
_STOP_SECONDS = 5.0
_STDERR_LINES = 40


class DecodeWorkersFailed(Exception):
    """Decode workers keep dying: the server cannot ingest and should stop (``Error: …``)."""


class _Died(Exception):
    """The worker process went away (or hung) during a request.

    ``grace`` is how long it may take to exit on its own before it is killed: a broken pipe
    means it is already exiting; a worker that does not answer is killed at once.
    """

    def __init__(self, why: str, grace: float = 0.0) -> None:
        super().__init__(why)
        self.grace = grace


class _StderrTail:
    """Drains a worker's stderr in a thread: logs each line, keeps the last ones, and calls
    ``on_eof`` when the stream closes (the worker has exited)."""

    def __init__(self, stream: IO[bytes], pid: int) -> None:
        self.lines: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stream = stream
        self._pid = pid
        self._thread: threading.Thread | None = None

    def start(self, on_eof: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=self._drain, args=(on_eof,), daemon=True,
                                        name=f"decode-worker-{self._pid}-stderr")
        self._thread.start()

    def _drain(self, on_eof: Callable[[], None]) -> None:
        with self._stream:
            for raw in iter(lambda: self._stream.readline(65536), b""):
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                log.warning("decode worker %d: %s", self._pid, line)
        on_eof()

    def text(self, wait: float = 1.0) -> str:
        """What it wrote last (after waiting up to ``wait`` s for the stream to close)."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)
        return "\n".join(self.lines)


def _exit_text(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


class _Worker:
    """One worker process and the two ends of its pipes."""

    def __init__(self, max_attributes: int, series_cache_size: int) -> None:
        self.proc = subprocess.Popen(
            WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, close_fds=True)
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self._send = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.stderr = _StderrTail(self.proc.stderr, self.proc.pid)
        self.ready = False  # it answered the hello: it can take requests
        self.retired = False  # out of the pool: exited, killed or stopped
        self._lock = threading.Lock()
        self._committed: list[int] = []
        self._refused: list[int] = []
        # Rows this worker sent, by series id, until committed: it sends each once.
        self._rows: dict[int, SeriesRow] = {}
        try:
            self._send.send_bytes(pickle.dumps({"max_attributes": max_attributes,
                                                "series_cache_size": series_cache_size}))
        except OSError:
            pass  # it is gone already: wait_ready says so

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float, closing: Callable[[], bool]) -> None:
        """Return once the worker answered the hello; raise ``_Died`` if it cannot."""
        deadline = time.monotonic() + timeout
        while not self._recv.poll(0.1):
            if closing() or self.retired:
                raise _Died("stopped while starting")
            if time.monotonic() > deadline:
                raise _Died(f"not ready within {timeout:g} s")
        try:
            answer = self._recv.recv_bytes()
        except (EOFError, OSError) as exc:
            raise _Died(type(exc).__name__, grace=1.0) from None
        if answer != READY:
            raise _Died(f"unexpected first answer {answer[:40]!r}")

    def committed(self, sids: list[int]) -> None:
        """These series (whose rows this worker sent) are stored: it may stop sending them."""
        with self._lock:
            self._committed.extend(sids)
            for sid in sids:
                self._rows.pop(sid, None)

    def refused(self, sids: list[int]) -> None:
        """These series (whose rows this worker sent) were refused: it sends their rows again
        with their next points (the row kept here goes once the worker knows)."""
        with self._lock:
            self._refused.extend(sids)

    def call(self, body: bytes, timeout: float, inflate_limit: int | None = None
             ) -> tuple[bool, Any]:
        with self._lock:
            committed, self._committed = self._committed, []
            refused, self._refused = self._refused, []
        try:
            head = struct.pack("<qq", -1 if inflate_limit is None else inflate_limit,
                               len(committed))
            self._send.send_bytes(head + np.asarray(committed + refused, np.uint64).tobytes())
            self._send.send_bytes(body)
            if not self._recv.poll(timeout):
                raise _Died(f"no answer within {timeout:g} s")
            ok, answer = pickle.loads(self._recv.recv_bytes())
            if ok:
                batch, refs, reset, kinds = answer
                batch.prepared = {kind: from_ipc(kind, self._recv.recv_bytes())
                                  for kind in kinds}
        except (EOFError, OSError) as exc:
            raise _Died(type(exc).__name__, grace=1.0) from None
        except _Died:
            raise
        except Exception as exc:  # an answer that does not unpickle: the stream is lost
            raise _Died(f"unreadable answer: {exc}") from None
        if not ok:
            return False, answer
        with self._lock:
            if reset:
                self._rows.clear()
            for sid in refused:  # the worker sent the rows it needed again, if any
                self._rows.pop(sid, None)
            self._rows.update(batch.series)
            for sid in refs:
                # a row missing here was committed since the worker was last told
                row = self._rows.get(sid)
                if row is not None:
                    batch.series[sid] = row
        return True, batch

    def end(self, grace: float, why: str) -> str:
        """Reap the process (killing it if it has not exited within ``grace``) and say how
        it ended, for the log."""
        try:
            self.proc.wait(grace)
            how = _exit_text(self.proc.returncode)
        except subprocess.TimeoutExpired:
            self.kill()
            how = f"was killed ({why})"
        return how if self.ready else f"{how} before it was ready"

    def stop(self, timeout: float) -> None:
        """Close its stdin (it exits at EOF); kill it if it has not exited in ``timeout``."""
        for conn in (self._send, self._recv):
            try:
                conn.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@dataclass
class PoolStats:
    """Served on /api/v1/status under ``decode``."""

    workers: int = 0
    pids: list[int] = dataclasses.field(default_factory=list)
    in_flight: int = 0
    waiting: int = 0
    restarts: int = 0
    rejected_busy: int = 0
    ready: int = 0


class DecodePool:
    """``workers`` decode processes shared by the receivers' threads."""

    def __init__(self, workers: int, max_attributes: int = 256, timeout: float = 30.0,
                 max_waiting: int | None = None,
                 on_failure: Callable[[str], None] | None = None,
                 series_cache_size: int = 1_000_000) -> None:
        if workers < 1:
            raise ValueError("a decode pool needs at least one worker")
        self.size = workers
        self.max_attributes = max_attributes
        self.series_cache_size = series_cache_size
        self.timeout = timeout
        self.max_waiting = 64 if max_waiting is None else max_waiting
        self._on_failure = on_failure
        self._cond = threading.Condition()
        self._closed = False
        self._failure: str | None = None  # why the pool gave up
        self._last_death = ""  # "decode worker 123 exited with status 1", for unavailable()
        self._deaths: deque[float] = deque()  # when workers died, within RESTART_WINDOW
        self._restarts = 0
        self._rejected = 0
        self._turns: deque[object] = deque()  # the waiting callers, first come first
        try:
            self._all = [_Worker(max_attributes, series_cache_size) for _ in range(workers)]
        except OSError as exc:
            raise DecodeWorkersFailed(f"cannot start a decode worker ({exc})") from None
        self._idle: list[_Worker] = []  # ready and free
        self._supervisor = threading.Thread(target=self._supervise, args=(list(self._all),),
                                            name="decode-pool", daemon=True)
        self._supervisor.start()

    def status(self) -> PoolStats:
        with self._cond:
            return PoolStats(
                workers=len(self._all), pids=[w.pid for w in self._all],
                in_flight=sum(self._busy(w) for w in self._all), waiting=len(self._turns),
                restarts=self._restarts, rejected_busy=self._rejected,
                ready=self._ready_count())

    def unavailable(self) -> str | None:
        """Why no worker can take a request now (a reason for /healthz), or None."""
        with self._cond:
            if self._failure is not None:
                return self._failure
            if self._closed:
                return "the decode workers are stopped"
            if self._ready_count():
                return None
            if self._last_death:
                return f"no decode worker is running: {self._last_death}; starting another"
            return "the decode workers are starting"

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until every worker can take requests; raise ``DecodeWorkersFailed`` if they
        keep dying or are not up within ``timeout`` (default: the pool's)."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._cond:
            while self._failure is None and self._ready_count() < self.size:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise DecodeWorkersFailed(
                        f"the decode workers did not start within {limit:g} s")
                self._cond.wait(left)
            if self._failure is not None:
                raise DecodeWorkersFailed(self._failure)

    def decode(self, body: bytes, inflate_limit: int | None = None
               ) -> tuple[DecodedBatch, Callable[[Future[int]], None] | None]:
        """Decode in a worker; returns the batch and the callback to attach to the future
        of its commit (None when it carries no series rows).  With ``inflate_limit`` the
        body is a gRPC message the worker inflates first if it is compressed.

        Raises what the decoder raised (``InvalidRequest``), or ``Overloaded``.
        """
        worker = self._acquire()
        try:
            ok, result = worker.call(body, self.timeout, inflate_limit)
        except _Died as exc:
            self._retire(worker, str(exc), exc.grace)
            raise Overloaded(f"decode worker {worker.pid} stopped ({exc}); retry") from None
        self._release(worker)
        if not ok:
            raise result
        batch: DecodedBatch = result
        if not batch.series:
            return batch, None
        sids = list(batch.series)

        def on_commit(future: Future[int]) -> None:
            if not future.cancelled() and future.exception() is None:
                refused = batch.refused_series
                worker.committed([sid for sid in sids if sid not in refused] if refused
                                 else sids)
                if refused:
                    worker.refused([sid for sid in sids if sid in refused])

        return batch, on_commit

    def _acquire(self) -> _Worker:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            waiting = len(self._turns)
            if not self._idle and waiting >= self.max_waiting and not self._closed:
                self._rejected += 1
                raise Overloaded(f"all {len(self._all)} decode workers are busy and "
                                 f"{waiting} requests wait; retry later")
            turn = object()
            self._turns.append(turn)
            try:
                while (not (self._idle and self._turns[0] is turn) and not self._closed
                       and self._failure is None):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Overloaded("no decode worker became free in time; retry later")
                    self._cond.wait(left)
                if self._failure is not None:
                    raise Overloaded(f"{self._failure}; the server is stopping")
                if self._closed:
                    raise Overloaded("the server is shutting down")
                return self._idle.pop()
            finally:
                self._turns.remove(turn)
                self._cond.notify_all()  # the next in turn may take a free worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if not worker.retired:  # it may have exited right after answering
                self._idle.append(worker)
                self._cond.notify_all()  # only the first in turn takes it

    def _supervise(self, starting: list[_Worker]) -> None:
        """Bring workers up, and replace each that dies, until the pool closes or gives up."""
        while True:
            for worker in starting:
                worker.stderr.start(functools.partial(self._retire, worker, "stderr closed", 1.0))
            for worker in starting:
                self._await_ready(worker)
            with self._cond:
                while not self._stopped() and len(self._all) >= self.size:
                    self._cond.wait()
                wake = time.monotonic() + self._restart_delay()
                while not self._stopped() and time.monotonic() < wake:
                    self._cond.wait(wake - time.monotonic())
                if self._stopped():
                    return
                missing = self.size - len(self._all)
            try:
                starting = [_Worker(self.max_attributes, self.series_cache_size)
                            for _ in range(missing)]
            except OSError as exc:
                starting = []
                self._died(f"decode worker could not start ({exc})", "")
            with self._cond:
                self._all.extend(starting)

    def _restart_delay(self) -> float:
        """The back-off before the next start: none after one death, longer as they repeat."""
        deaths = len(self._deaths)
        return _RESTART_DELAYS[min(deaths, len(_RESTART_DELAYS)) - 1] if deaths else 0.0

    def _await_ready(self, worker: _Worker) -> None:
        try:
            worker.wait_ready(self.timeout, lambda: self._closed)
        except _Died as exc:
            self._retire(worker, str(exc), exc.grace)
            return
        with self._cond:
            if not worker.retired:
                worker.ready = True
                self._idle.append(worker)
                self._cond.notify_all()

    def _ready_count(self) -> int:
        return sum(w.ready and not w.retired for w in self._all)

    def _busy(self, worker: _Worker) -> bool:
        return worker.ready and not worker.retired and worker not in self._idle

    def _stopped(self) -> bool:
        return self._closed or self._failure is not None

    def _retire(self, worker: _Worker, why: str, grace: float) -> None:
        """Take a worker that died (or hung) out of the pool, once, and count the death."""
        with self._cond:
            if worker.retired:
                return
            worker.retired = True
            if worker in self._idle:
                self._idle.remove(worker)
        how = worker.end(grace, why)
        self._died(f"decode worker {worker.pid} {how}", worker.stderr.text(), worker)

    def _died(self, what: str, stderr: str, worker: _Worker | None = None) -> None:
        """Count a death (and drop its worker); past RESTART_LIMIT within RESTART_WINDOW,
        give up."""
        now = time.monotonic()
        with self._cond:
            if worker is not None:
                self._all.remove(worker)
            self._cond.notify_all()
            if self._stopped():
                return
            self._deaths.append(now)
            while self._deaths[0] < now - RESTART_WINDOW:
                self._deaths.popleft()
            self._last_death = what
            deaths = len(self._deaths)
            if deaths >= RESTART_LIMIT:
                summary = (f"decode workers keep dying ({deaths} times within "
                           f"{RESTART_WINDOW:g} s); the last: {what}")
                last = stderr.strip().splitlines()[-1:]
                self._failure = failure = f"{summary}: {last[0][:300]}" if last else summary
            else:
                self._restarts += 1
                failure = None
                delay = self._restart_delay()
        if failure is None:
            log.warning("%s; starting another%s", what, f" in {delay:g} s" if delay else "")
            return
        log.error("%s; its stderr:\n%s", summary,
                  "\n".join(f"    {line}" for line in stderr.splitlines()) or "    (empty)")
        if self._on_failure is not None:
            self._on_failure(failure)

    def close(self, timeout: float = _STOP_SECONDS) -> None:
        """Refuse new requests, let the ones in workers finish, stop every worker."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while any(self._busy(w) for w in self._all):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            busy = [w for w in self._all if self._busy(w)]
            rest = [w for w in self._all if w not in busy]
            for worker in self._all:
                worker.retired = True  # exits from now on are expected
        self._supervisor.join(max(0.5, deadline - time.monotonic()))
        for worker in busy:  # still decoding: its caller gets UNAVAILABLE at once
            worker.kill()
        for worker in rest:
            worker.stop(max(0.5, deadline - time.monotonic()))
