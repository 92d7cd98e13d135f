"""The DuckDB store: schema and views, the file lock, and the one writer thread."""

from .store import StoreError, StoreLocked, known_series_ids, open_store
from .writer import StoreBusy, Writer, WriterClosed

__all__ = ["StoreBusy", "StoreError", "StoreLocked", "Writer", "WriterClosed",
           "known_series_ids", "open_store"]
