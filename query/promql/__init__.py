"""PromQL as Prometheus 2.42 speaks it (docs/design/prometheus.md).

``parse`` turns the text into our own frozen syntax tree (``nodes``), refusing what 2.42
refuses with its words and positions; ``format`` writes numbers and times as Prometheus'
JSON does; ``params`` reads the HTTP API's times and durations; ``evaluate`` answers the
expressions the engine can evaluate so far.
"""

from __future__ import annotations

from .parse import ParseError, QueryTooComplex, parse

__all__ = ["ParseError", "QueryTooComplex", "parse"]
