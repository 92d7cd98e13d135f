"""PromQL as Prometheus 2.42 speaks it (docs/design/prometheus.md).

``parse`` turns the text into our own frozen syntax tree (``nodes``; ``lexer`` and
``syntax`` give errors 2.42's words and positions); ``api`` answers the HTTP API's endpoints
(``params`` reads times and durations, ``format`` writes values as Prometheus' JSON does);
``store`` sees the store's series under Prometheus labels (``labels``) and fetches samples,
``selectors`` reads them per step; ``evaluate`` walks the tree with ``binary``,
``aggregate``, ``range_functions``, ``instant_functions``, ``label_functions`` and
``histograms``.
"""

from __future__ import annotations

from .parse import ParseError, QueryTooComplex, parse

__all__ = ["ParseError", "QueryTooComplex", "parse"]
