"""A decode worker process: request bytes in, a pickled ``DecodedBatch`` out, over its pipes.

Started by ``DecodePool`` as ``python -P -m otel_hms.receiver.decode_worker``, it reads framed
messages on stdin and answers each on the original stdout (fd 1 is pointed at stderr, so a
stray print cannot corrupt the stream).  It keeps its own ``Decoder`` and series caches and
builds the batch's point tables (``arrow_batches.prepare``), so the server only inserts them;
the server tells it, with each request, which series it sent rows for are now committed.
It ignores SIGINT and SIGTERM (the server drains it) and exits when stdin closes, which also
happens when the server dies, so a worker never outlives its server.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from multiprocessing.connection import Connection

import numpy as np

# Frames on the pipes: the hello (pickled settings), answered by READY once everything is
# imported (so the server knows the worker can decode), then per request the inflate limit
# (int64; -1: the body is not a gRPC message) and the number of committed series ids (int64),
# followed by the committed series ids and then the refused ones (uint64 bytes), and the
# body; each answer is one pickled (True, (batch, refs, reset, kinds)) and then per kind the
# batch's prepared table as an Arrow IPC record batch (``arrow_batches.to_ipc``; the pickled
# batch holds none), or one pickled (False, exception).  A series row goes to the server
# once: later batches name it in ``refs`` and the server puts back the row it keeps until the
# commit; ``reset`` says the worker forgot what it sent (past SENT_LIMIT), and so must the
# server.  A refused series' row is sent again with its next points.
PROTOCOL = 5
READY = b"ready"
SENT_LIMIT = 1_000_000


def serve(inp: Connection, out: Connection) -> int:
    from otel_hms.storage.arrow_batches import prepare, to_ipc
    from otel_hms.storage.recent_ids import RecentIds

    from .decode import Decoder
    from .payload import grpc_message

    settings = pickle.loads(inp.recv_bytes())
    cache_size = int(settings["series_cache_size"])
    decoder = Decoder(int(settings["max_attributes"]), RecentIds(cache_size), cache_size)
    try:
        out.send_bytes(READY)
    except OSError:
        return 0
    sent: set[int] = set()  # series whose rows went to the server, not yet committed
    while True:
        try:
            committed = inp.recv_bytes()
            body = inp.recv_bytes()
        except (EOFError, OSError):
            return 0
        inflate_limit, n_committed = struct.unpack_from("<qq", committed)
        if len(committed) > 16:
            ids = np.frombuffer(committed, np.uint64, offset=16).tolist()
            decoder.known.update(ids[:n_committed])
            sent.difference_update(ids)
        try:
            if inflate_limit >= 0:
                body = grpc_message(body, inflate_limit)
            batch = prepare(decoder.decode_bytes(body))
            tables = batch.prepared or {}
            frames = [to_ipc(table) for table in tables.values()]
            batch.prepared = None
            reset = len(sent) >= SENT_LIMIT
            if reset:
                sent.clear()
            refs = [sid for sid in batch.series if sid in sent]
            for sid in refs:
                del batch.series[sid]
            sent.update(batch.series)
            answer = pickle.dumps((True, (batch, refs, reset, list(tables))), PROTOCOL)
        except Exception as exc:  # sent back and raised in the server, as in-process
            try:
                answer = pickle.dumps((False, exc), PROTOCOL)
            except Exception:
                answer = pickle.dumps((False, RuntimeError(repr(exc))), PROTOCOL)
            frames = []
        try:
            out.send_bytes(answer)
            for frame in frames:
                out.send_bytes(frame)
        except OSError:
            return 0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)
    return serve(Connection(0, writable=False), Connection(out_fd, readable=False))


if __name__ == "__main__":
    sys.exit(main())
