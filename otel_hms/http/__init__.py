"""The HTTP API on the ``--api`` address: every route, behind one bearer check.

``api`` (health, status, and the app that puts the routes together), ``query`` (the query API
and its live stream), ``sql`` (``POST /api/v1/sql``), ``alerting`` (alerts, rules, SLOs,
backtests), ``export`` (``POST /api/v1/export``), ``cardinality``, ``openapi``; the
dashboard's routes are ``otel_hms.dashboard``.  A PromQL endpoint would be a module here,
asking ``otel_hms.query``.
"""
