"""The store: every table, its migrations and every write.

It owns the points and series (``schema``, written by ``writer`` from the ``batch`` the
receiver hands it), what a stored point means (``point_macros``, ``sum_chain``), roll-ups,
late points and retention (``rollups``, ``rollup_steps``, ``late_fold``), alert state
(``alert_state``) and posted SLOs (``slo_definitions``), the one connection every part holds
(``connection``) and the file lock (``store``, ``lock_holder``).  It imports nothing of
otel-hms but ``common``; every other room may import it.  The layers above hold it as one
``Store`` (``seam``: its writer, readers' cursors, maintenance, close), which a face opens
as ``DuckDBStore`` (``duckdb_store``); a second engine (ClickHouse) is a second ``Store``.
"""

from .duckdb_store import CheckpointFailed, DuckDBStore, DuckDBStoreOptions
from .lock_holder import LockHolder
from .rollups import Retention
from .seam import Cursor, Cursors, Store, StoreMaintenance, StoreWriter
from .store import StoreError, StoreLocked, known_series_ids, open_store
from .writer import StoreBusy, Writer, WriterClosed

__all__ = ["CheckpointFailed", "Cursor", "Cursors", "DuckDBStore", "DuckDBStoreOptions",
           "LockHolder", "Retention", "Store", "StoreBusy", "StoreError", "StoreLocked",
           "StoreMaintenance", "StoreWriter", "Writer", "WriterClosed", "known_series_ids",
           "open_store"]
