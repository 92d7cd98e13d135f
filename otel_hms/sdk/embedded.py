"""``DuckDBMetricExporter``: an OpenTelemetry SDK exporter that writes into a store file in
process, with no server, through the receiver's own decoder and the store's one writer.

The SDK's ``MetricsData`` is encoded into the very OTLP request the stock exporters send
(``encode_metrics``) and handed to the ``Ingest`` path ``otel-hms serve`` uses, so a point
exported here lands in exactly the rows it would over OTLP: one schema, one writer path.
Temporality and histogram aggregation follow the stock exporters' rules, including
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` and
``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import (
    OTLPMetricExporterMixin,
)
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import Aggregation

from otel_hms.query import install_helpers
from otel_hms.receiver.decode import Decoder
from otel_hms.receiver.errors import RefusedExport
from otel_hms.receiver.ingest import Ingest
from otel_hms.storage import (
    Cursor,
    DuckDBStore,
    DuckDBStoreOptions,
    LockHolder,
    Store,
    StoreLocked,
)

log = logging.getLogger("otel_hms.embedded")
# DuckDB lets one process open a file twice; two writers on it would race, so one it is.
_open_paths: set[str] = set()
_open_lock = threading.Lock()


class DuckDBMetricExporter(MetricExporter, OTLPMetricExporterMixin):
    """Export SDK metrics straight into the otel-hms store at ``path`` (created if missing).

    The file is held by this process until ``shutdown`` (the SDK calls it at exit); a file
    that a running ``otel-hms serve`` holds is refused with ``StoreLocked``.
    """

    def __init__(self, path: str | os.PathLike[str],
                 preferred_temporality: dict[type, AggregationTemporality] | None = None,
                 preferred_aggregation: dict[type, Aggregation] | None = None,
                 max_attributes_per_point: int = 256) -> None:
        self._common_configuration(preferred_temporality, preferred_aggregation)
        self.path = os.fspath(path)
        self._key = os.path.realpath(self.path)
        with _open_lock:
            if self._key in _open_paths:
                raise StoreLocked(f"DuckDBMetricExporter: {self.path} is already open in this "
                                  "process; share that exporter (or its MeterProvider)",
                                  LockHolder(os.getpid(), "this process"))
            self._store = self._open()
            _open_paths.add(self._key)
        writer = self._store.writer
        self._ingest = Ingest(writer, Decoder(max_attributes_per_point, known=writer.known),
                              busy_errors=self._store.busy_errors)
        self._lock = threading.Lock()
        self._closed = False

    def _open(self) -> Store:
        try:
            return DuckDBStore.open(DuckDBStoreOptions(self.path, prepare=install_helpers))
        except StoreLocked as exc:
            fix = ("send to it with otel_hms.configure(endpoint=...) or export into another "
                   "file" if exc.holder and exc.holder.is_serve
                   else "stop it or export into another file")
            raise StoreLocked(f"DuckDBMetricExporter: {self.path} is held by "
                              f"{exc.holder or 'another process'}: {fix}", exc.holder) from None

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        """Decode and commit; returns once the points are in the file."""
        with self._lock:
            if self._closed:
                log.warning("DuckDBMetricExporter: export after shutdown is ignored")
                return MetricExportResult.FAILURE
            try:
                self._ingest.export(encode_metrics(metrics_data), f"embedded {self.path}",
                                    sender="this process (DuckDBMetricExporter)")
            except RefusedExport as exc:
                log.warning("DuckDBMetricExporter: export to %s failed: %s", self.path, exc)
                return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True  # every export has committed before it returned

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Commit what is queued, checkpoint and release the file; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._store.close(timeout_millis / 1000)
            finally:
                with _open_lock:
                    _open_paths.discard(self._key)

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one query on the store (its own cursor) and return the rows."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"DuckDBMetricExporter: {self.path} is closed; open the "
                                   "file with duckdb.connect() or `otel-hms serve --db` instead")
            cursor = self._store.cursor()
        try:
            rows: list[tuple[Any, ...]] = cursor.execute(query, params).fetchall()
            return rows
        finally:
            cursor.close()

    def cursor(self) -> Cursor:
        """A cursor on the store for richer reads (``.sql(…).df()``, ``.show()``)."""
        return self._store.cursor()


__all__ = ["DuckDBMetricExporter"]
