"""A store in the test process: opened as the server opens it, written by the real decoder
and writer, queried on cursors; and one roll-up pass on it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otel_hms.query import install_helpers
from otel_hms.receiver.decode import Decoder
from otel_hms.storage.rollups import Maintenance, Retention
from otel_hms.storage.store import known_series_ids, open_store
from otel_hms.storage.writer import Writer

from metric_builders import at


class Store:
    def __init__(self, path: Path) -> None:
        self.con = open_store(str(path))
        install_helpers(self.con)
        self.writer = Writer(self.con, known_series_ids(self.con), 1_000_000)
        self.decoder = Decoder(known=self.writer.known)

    def send(self, req: ExportMetricsServiceRequest) -> None:
        batch = self.decoder.decode(req)
        assert batch.rejected == 0, batch.error_message
        self.writer.submit(batch).result(10)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        cur = self.con.cursor()
        cur.execute(sql)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self.writer.close()
        self.con.close()


def maintain(store: Store, now_s: float, retention: Retention) -> Maintenance:
    m = Maintenance(store.con, retention, delay=dt.timedelta(0))
    m.run_once(dt.datetime.fromtimestamp(at(now_s) / 1e9, dt.UTC))
    return m
