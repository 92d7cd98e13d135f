"""Decode requests in worker processes, so decoding runs beside the writer instead of under
the server's GIL.

Each worker (``decode_worker``) is a child process with its own ``Decoder`` and series
caches, fed request bytes over a pipe and answering with the pickled ``DecodedBatch``; the
server keeps the one DuckDB writer.  Series ids are a hash of the series identity, so every
worker computes the same ids; a worker sends a series' row until the server tells it the
series is committed (``on_commit``), and the writer drops rows of series it already has.
A row crosses the pipe once: the server keeps it, and puts it back into each batch that
needs it until the commit, so batches look exactly as they would decoded in-process.

One request at a time per worker.  A caller waits for a free worker, but at most
``max_waiting`` callers do: past that, and when the pool is closing, ``decode`` raises
``Overloaded`` (UNAVAILABLE / 503) so the sender retries.  A worker that dies or does not
answer within ``timeout`` fails its request the same way and is replaced.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from otel_hms.storage.arrow_batches import from_ipc

from .decode import DecodedBatch, SeriesRow
from .errors import Overloaded

log = logging.getLogger("otel_hms.receiver")

_STOP_SECONDS = 5.0


class _Died(Exception):
    """The worker process went away (or hung) during a request."""


class _Worker:
    """One worker process and the two ends of its pipes."""

    def __init__(self, max_attributes: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otel_hms.receiver.decode_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._send = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self._lock = threading.Lock()
        self._committed: list[int] = []
        # Rows this worker sent, by series id, until committed: it sends each once.
        self._rows: dict[int, SeriesRow] = {}
        self._send.send_bytes(pickle.dumps({"max_attributes": max_attributes}))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def committed(self, sids: list[int]) -> None:
        """These series (whose rows this worker sent) are stored: it may stop sending them."""
        with self._lock:
            self._committed.extend(sids)
            for sid in sids:
                self._rows.pop(sid, None)

    def call(self, body: bytes, timeout: float, inflate_limit: int | None = None
             ) -> tuple[bool, Any]:
        with self._lock:
            committed, self._committed = self._committed, []
        try:
            head = struct.pack("<q", -1 if inflate_limit is None else inflate_limit)
            self._send.send_bytes(head + np.asarray(committed, np.uint64).tobytes())
            self._send.send_bytes(body)
            if not self._recv.poll(timeout):
                raise _Died(f"no answer within {timeout:g} s")
            ok, answer = pickle.loads(self._recv.recv_bytes())
            if ok:
                batch, refs, reset, kinds = answer
                batch.prepared = {kind: from_ipc(kind, self._recv.recv_bytes())
                                  for kind in kinds}
        except (EOFError, OSError) as exc:
            raise _Died(type(exc).__name__) from None
        except Exception as exc:  # an answer that does not unpickle: the stream is lost
            raise _Died(f"unreadable answer: {exc}") from None
        if not ok:
            return False, answer
        with self._lock:
            if reset:
                self._rows.clear()
            self._rows.update(batch.series)
            for sid in refs:
                # a row missing here was committed since the worker was last told
                row = self._rows.get(sid)
                if row is not None:
                    batch.series[sid] = row
        return True, batch

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


class DecodePool:
    """``workers`` decode processes shared by the receivers' threads."""

    def __init__(self, workers: int, max_attributes: int = 256, timeout: float = 30.0,
                 max_waiting: int | None = None) -> None:
        if workers < 1:
            raise ValueError("a decode pool needs at least one worker")
        self.max_attributes = max_attributes
        self.timeout = timeout
        self.max_waiting = 64 if max_waiting is None else max_waiting
        self._cond = threading.Condition()
        self._closed = False
        self._restarts = 0
        self._rejected = 0
        self._waiting = 0
        self._all = [_Worker(max_attributes) for _ in range(workers)]
        self._idle = list(self._all)

    def status(self) -> PoolStats:
        with self._cond:
            return PoolStats(len(self._all), [w.pid for w in self._all],
                             len(self._all) - len(self._idle), self._waiting, self._restarts,
                             self._rejected)

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
            self._replace(worker, str(exc))
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
                worker.committed(sids)

        return batch, on_commit

    def _acquire(self) -> _Worker:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            if not self._idle and self._waiting >= self.max_waiting and not self._closed:
                self._rejected += 1
                raise Overloaded(f"all {len(self._all)} decode workers are busy and "
                                 f"{self._waiting} requests wait; retry later")
            self._waiting += 1
            try:
                while not self._idle and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Overloaded("no decode worker became free in time; retry later")
                    self._cond.wait(left)
                if self._closed:
                    raise Overloaded("the server is shutting down")
                return self._idle.pop()
            finally:
                self._waiting -= 1

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            self._idle.append(worker)
            self._cond.notify()

    def _replace(self, worker: _Worker, why: str) -> None:
        log.warning("decode worker %d stopped (%s, exit status %s); starting another",
                    worker.pid, why, worker.proc.poll())
        worker.kill()
        with self._cond:
            self._all.remove(worker)
            if self._closed:
                self._cond.notify_all()
                return
            self._restarts += 1
        fresh = _Worker(self.max_attributes)
        with self._cond:
            self._all.append(fresh)
            self._idle.append(fresh)
            self._cond.notify()

    def close(self, timeout: float = _STOP_SECONDS) -> None:
        """Refuse new requests, let the ones in workers finish, stop every worker."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while len(self._idle) < len(self._all):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            busy = [w for w in self._all if w not in self._idle]
            idle = list(self._idle)
        for worker in busy:  # still decoding: its caller gets UNAVAILABLE at once
            worker.proc.kill()
        for worker in idle:
            worker.stop(max(0.5, deadline - time.monotonic()))
