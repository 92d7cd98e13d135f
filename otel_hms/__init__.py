"""otel-hms: an OpenTelemetry metrics backend in one ``pip install``.

OTLP (gRPC and HTTP) in, DuckDB tables out, plain SQL on top.  For services:
``otel_hms.configure(service_name=…)`` sets up the SDK in one line, and
``otel_hms.DuckDBMetricExporter`` writes a script's metrics into a store file with no server.
They load the SDK on first use, so the ``otel-hms`` command starts quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from otel_hms.sdk.embedded import DuckDBMetricExporter
    from otel_hms.sdk.instrument import ConfigureError, configure, meter_provider, shutdown, sql

_LAZY = {"DuckDBMetricExporter": "sdk.embedded", "ConfigureError": "sdk.instrument",
         "configure": "sdk.instrument", "meter_provider": "sdk.instrument",
         "shutdown": "sdk.instrument", "sql": "sdk.instrument"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigureError", "DuckDBMetricExporter", "__version__", "configure",
           "meter_provider", "shutdown", "sql"]
