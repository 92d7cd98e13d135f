"""Fill a fresh store in process through the real decoder and writer, as live ingest would.

Shared by the benchmarks that need a large store before ``otel-hms serve`` starts
(bench/alerting.py, bench/query.py): sending millions of points over OTLP would only time
ingest again, so the same ``Decoder`` and ``Writer`` the server uses are driven directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otel_hms.receiver.decode import Decoder
from otel_hms.storage.schema import POINT_TABLES
from otel_hms.storage.store import open_store
from otel_hms.storage.writer import Writer


def fill_store(db: Path, requests: Iterable[ExportMetricsServiceRequest],
               in_flight: int = 20) -> tuple[int, float]:
    """Decode and commit every request in order; returns (points stored, seconds).

    At most ``in_flight`` decoded requests wait for the writer, so memory stays bounded
    and the writer group-commits as it does under concurrent exports.  The store is
    checkpointed and closed at the end.
    """
    started = time.perf_counter()
    con = open_store(str(db))
    writer = Writer(con, set(), 50_000_000)
    decoder = Decoder(known=writer.known)
    pending = []
    for request in requests:
        pending.append(writer.submit(decoder.decode(request)))
        if len(pending) > in_flight:
            pending.pop(0).result(600)
    for f in pending:
        f.result(600)
    writer.close(600)
    stored = 0
    for table in POINT_TABLES.values():
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        stored += int(row[0]) if row else 0
    con.execute("CHECKPOINT")
    con.close()
    return stored, time.perf_counter() - started
