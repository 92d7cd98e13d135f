"""otel-hms: an OpenTelemetry metrics backend in one ``pip install``.

OTLP (gRPC and HTTP) in, DuckDB tables out, plain SQL on top.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
