"""Every setting in one table: name, default, help.  The CLI flags, the YAML keys, the
``OTEL_HMS_*`` environment variables and the README's configuration table all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    multiple: bool = False  # a list: repeatable flag, YAML list, comma-separated env var

    @property
    def env(self) -> str:
        return "OTEL_HMS_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


MiB = 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    Setting("db", "./otel-hms.duckdb", "DuckDB file holding the store (created if missing)"),
    Setting("otlp_grpc", "127.0.0.1:4317", "OTLP/gRPC listen address HOST:PORT"),
    Setting("otlp_http", "127.0.0.1:4318", "OTLP/HTTP listen address HOST:PORT"),
    Setting("api", "127.0.0.1:4320", "query API, SQL endpoint and /healthz address HOST:PORT"),
    Setting("auth_token", None,
            "bearer token required on OTLP and API requests (Authorization: Bearer TOKEN)"),
    Setting("tls_cert", None, "PEM certificate file: serve OTLP and the API over TLS "
            "(needs tls_key)"),
    Setting("tls_key", None, "PEM private key file for tls_cert"),
    Setting("max_request_bytes", 64 * MiB, "largest OTLP request accepted, after "
            "decompression (gRPC RESOURCE_EXHAUSTED / HTTP 413 above it)", int),
    Setting("max_pending_points", 2_000_000, "points queued for the writer before exports "
            "are refused with UNAVAILABLE / 503 so senders retry", int),
    Setting("decode_workers", 1, "processes that decode OTLP requests beside the server's "
            "writer (0: decode in the server process)", int),
    Setting("max_attributes_per_point", 256, "points with more attributes are rejected "
            "(reported in partial_success)", int),
    Setting("max_series", 1_000_000, "most series the store holds; points of new series past "
            "it are refused (reported in partial_success), known series are still stored "
            "(0: no limit)", int),
    Setting("max_series_per_metric", 100_000, "most series of one metric name; points of its "
            "new series past it are refused like max_series' (0: no limit)", int),
    Setting("series_cache_size", 2_000_000, "series each cache of the decoders and the writer "
            "holds at most; series in use stay while they number up to half of it, the others "
            "are looked up again", int),
    Setting("sql_timeout_seconds", 30.0, "time limit of one request to the SQL endpoint, from "
            "its arrival to its answer encoded (and of one alert rule's query)", float),
    Setting("sql_row_limit", 100_000, "most rows one query on the SQL endpoint returns", int),
    Setting("sql_max_answer_bytes", 64 * MiB, "largest answer (JSON) one query on the SQL "
            "endpoint may build; above it: HTTP 413 naming this setting", int),
    Setting("query_max_series", 10_000, "most series one answer of /api/v1/query (or the "
            "stream) holds; above it: HTTP 413 naming this setting", int),
    Setting("query_max_points", 1_000_000, "most points one answer of /api/v1/query (or the "
            "stream) holds, all series together; above it: HTTP 413 naming this setting", int),
    Setting("memory_limit", None, "DuckDB's memory limit for the whole store (user SQL, "
            "writer, roll-ups), e.g. 2GB or 50%; a query needing more is refused with 413; "
            "unset: DuckDB's default, 80% of RAM"),
    Setting("retention_raw", "30d", "how long raw points are kept (e.g. 30d, 12h; forever); "
            "older ones are dropped once rolled up, and points older than this when they "
            "arrive are refused (reported in partial_success)"),
    Setting("retention_1m", "90d", "how long 1-minute roll-ups are kept (forever to keep all)"),
    Setting("retention_1h", "forever", "how long 1-hour roll-ups are kept"),
    Setting("rollup_delay", "2m", "minutes are rolled up this long after they end; points "
            "arriving later are folded in by the next pass"),
    Setting("rollup_interval_seconds", 30.0, "how often roll-ups and retention run", float),
    Setting("log_level", "info", "debug, info, warning or error"),
    Setting("export_root", None, "POST /api/v1/export (otel-hms export through the server) "
            "writes only under this directory; unset: exports/ beside the db file"),
    Setting("rules", (), "alert rules file (YAML); repeat for several; reloaded on SIGHUP and "
            "POST /api/v1/rules/reload", multiple=True),
    Setting("dashboards", None, "directory of YAML dashboards shown by the web page on the "
            "--api address (GET /api/v1/dashboards)"),
)

BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The effective settings (``config.resolve``): one typed field per ``SETTINGS`` entry,
    in the same order (a test holds the two together)."""

    db: str
    otlp_grpc: str
    otlp_http: str
    api: str
    auth_token: str | None
    tls_cert: str | None
    tls_key: str | None
    max_request_bytes: int
    max_pending_points: int
    decode_workers: int
    max_attributes_per_point: int
    max_series: int
    max_series_per_metric: int
    series_cache_size: int
    sql_timeout_seconds: float
    sql_row_limit: int
    sql_max_answer_bytes: int
    query_max_series: int
    query_max_points: int
    memory_limit: str | None
    retention_raw: str
    retention_1m: str
    retention_1h: str
    rollup_delay: str
    rollup_interval_seconds: float
    log_level: str
    export_root: str | None
    rules: tuple[str, ...]
    dashboards: str | None
