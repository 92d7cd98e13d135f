"""The store: every table, its migrations and every write.

It owns the points and series (``schema``, written by ``writer`` from the ``batch`` the
receiver hands it), what a stored point means (``point_macros``, ``sum_chain``), roll-ups,
late points and retention (``rollups``, ``rollup_steps``, ``late_fold``), alert state
(``alert_state``) and posted SLOs (``slo_definitions``), the one connection every part holds
(``connection``) and the file lock (``store``, ``lock_holder``).  It imports nothing of
otel-hms but ``common``; every other room may import it.  DuckDB is its engine; a second
one (ClickHouse) would be a second implementation of what the layers above call here.
"""

from .store import StoreError, StoreLocked, known_series_ids, open_store
from .writer import StoreBusy, Writer, WriterClosed

__all__ = ["StoreBusy", "StoreError", "StoreLocked", "Writer", "WriterClosed",
           "known_series_ids", "open_store"]
