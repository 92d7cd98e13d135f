"""The query layer: everything that turns a question into SQL over the store.

``sql_helpers`` (the ``rate``, ``histogram_quantile``, ``window_stats`` … table macros users
call, installed over storage's point macros by ``install_helpers``), ``spec`` (the query
API's parameters and the statement that answers them), ``service`` (``QueryService``: metric
lookup, answers, shaping), ``counters`` and ``rollup_quantiles`` (shorter roads to the
helpers' exact answers), ``series_labels`` (labels that tell series apart) and ``read_only``
(the read-only, time-limited gate user SQL and rule SQL go through).

``promql`` is the PromQL engine (parser front, evaluation over the same store, the
Prometheus API's answers).  It imports storage (and common) only; alerting and the HTTP API
ask it.
"""

from __future__ import annotations

from .sql_helpers import install as install_helpers

__all__ = ["install_helpers"]
