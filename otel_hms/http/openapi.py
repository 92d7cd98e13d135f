"""The OpenAPI 3.1 document of the ``--api`` address, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from otel_hms import __version__
from otel_hms.export.spec import KINDS, TIME_HELP
from otel_hms.query.spec import AGGS_HELP

_ERROR = {"description": "refused: the message says what is wrong and how to fix it",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_UNAUTHORIZED = {"description": "missing or wrong bearer token (when auth_token is set)"}
_UNAVAILABLE = {"description": "the store's disk failed a write and DuckDB closed the "
                "database until it is reopened: the message says why; retry once /readyz "
                "answers 200 (Retry-After: 1)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _param(name: str, description: str, required: bool = False,
           example: str | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": required,
                             "description": description, "schema": {"type": "string"}}
    if example is not None:
        param["example"] = example
    return param


_QUERY_PARAMS = [
    _param("metric", "metric name (GET /api/v1/metrics lists them)", True,
           "http.server.request.duration"),
    _param("range", "how far back from end: 30s, 5m, 24h, 30d (default 1h)", example="24h"),
    _param("step", "bucket width; buckets start at the range start (default: ~300 points)",
           example="1m"),
    _param("agg", f"aggregation: {AGGS_HELP}; default rate for counters, p99 for histograms, "
           "avg otherwise", example="p99"),
    _param("by", "comma-separated attribute keys to group series by (default: one series "
           "per stored series)", example="http.route"),
    _param("where", "attribute=value filters, comma-separated or repeated",
           example="http.request.method=GET"),
    _param("start", "range start: unix seconds or ms, RFC 3339, or now-1h (overrides range)"),
    _param("end", "range end: unix seconds or ms, RFC 3339, or now (default now)"),
]

_SERIES = {
    "type": "object",
    "properties": {
        "metric": {"type": "string"}, "kind": {"type": "string"}, "agg": {"type": "string"},
        "start_ms": {"type": "integer"}, "end_ms": {"type": "integer"},
        "step_ms": {"type": "integer"},
        "source": {"type": "string", "enum": ["raw", "1m", "1h"],
                   "description": "raw points or the roll-up the answer came from"},
        "now_ms": {"type": "integer", "description": "the server's clock when it answered, "
                   "unix ms (a live chart's window follows it, whatever the client's clock)"},
        "series": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "points": {"type": "array", "items": {
                    "type": "array", "prefixItems": [
                        {"type": "integer", "description": "bucket start, unix ms"},
                        {"type": ["number", "null"]}]}},
            }}},
    },
}

_EXPORT_FILE = {"type": "object", "properties": {
    "kind": {"type": "string"}, "date": {"type": "string", "format": "date"},
    "path": {"type": "string", "description": "relative to dir"},
    "rows": {"type": "integer", "description": "rows taken from the store"},
    "kept": {"type": "integer",
             "description": "rows an earlier export wrote outside this range or metrics"}}}

_EXPORT = {
    "summary": "write stored points as hive-partitioned Parquet into a directory on the "
               "server's machine (dir/kind=K/date=YYYY-MM-DD/hour-HH.parquet, UTC); what "
               "`otel-hms export` calls",
    "description": "Each file is replaced atomically, so readers scanning the directory never "
                   "see half a file; re-exporting a range rewrites its hour files instead of "
                   "adding rows. `to` must lie under the export_root setting (default: "
                   "exports/ beside the store file), symlinks and .. resolved; anything "
                   "else is refused with 400.",
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["to"], "properties": {
            "to": {"type": "string", "description": "absolute directory under export_root "
                   "(created if missing)"},
            "since": {"type": "string", "description": f"range start: {TIME_HELP} "
                      "(default 24h)"},
            "until": {"type": "string", "description": "range end, exclusive (default now)"},
            "kinds": {"type": "array", "items": {"type": "string", "enum": list(KINDS)},
                      "description": "default: every kind"},
            "metrics": {"type": "array", "items": {"type": "string"},
                        "description": "metric names (default: every metric)"}}},
        "example": {"to": "/var/lib/otel-hms/exports/parquet", "since": "24h",
                    "kinds": ["gauge", "histogram"]}}}},
    "responses": {
        "200": {"description": "what was written", "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "dir": {"type": "string"}, "since": {"type": "string"},
                "until": {"type": "string"}, "rows": {"type": "integer"},
                "kinds": {"type": "array", "items": {"type": "string"}},
                "metrics": {"type": "array", "items": {"type": "string"}},
                "files": {"type": "array", "items": _EXPORT_FILE}}}}}},
        "400": _ERROR, "401": _UNAUTHORIZED,
        "409": {"description": "another export is writing into the same directory"},
        "503": _UNAVAILABLE},
}


_CARDINALITY_USAGE = {
    "type": "object",
    "description": "series stored and the limits new series must fit under (0: none); "
                   "refused_series counts refusals since start (a series refused in three "
                   "exports counts three times); the refused points are under "
                   "ingest.rejected_points as max_series and max_series_per_metric",
    "properties": {
        "series": {"type": "integer"}, "metrics": {"type": "integer"},
        "max_series": {"type": "integer"}, "max_series_per_metric": {"type": "integer"},
        "refused_series": {"type": "integer"}}}


_COUNT = {"type": "integer"}
_SHARE = {"type": ["number", "null"], "description": "a fraction; null without a limit"}
_CARDINALITY = {
    "type": "object",
    "properties": {
        "series": _COUNT, "metrics": _COUNT, "max_series": _COUNT,
        "max_series_per_metric": _COUNT, "usage": _SHARE, "refused_series": _COUNT,
        "metric": {"type": ["string", "null"]},
        "top_metrics": {"type": "array", "items": {"type": "object", "properties": {
            "metric": {"type": "string"}, "series": _COUNT, "share": _SHARE,
            "usage": _SHARE, "refused_points": _COUNT, "refused_series": _COUNT}}},
        "top_labels": {"type": "array", "items": {"type": "object", "properties": {
            "label": {"type": "string"},
            "attributes": {"type": "string", "enum": ["point", "resource"]},
            "values": _COUNT, "series": _COUNT}}},
        "top_label_values": {"type": "array", "items": {"type": "object", "properties": {
            "label": {"type": "string"}, "value": {"type": "string"}, "series": _COUNT}}},
        "refused_metrics": {"type": "array", "items": {"type": "object", "properties": {
            "metric": {"type": "string"}, "points": _COUNT, "series": _COUNT}}}}}


_HEALTH = {"get": {
    "summary": "200 while the server can store exports; 503 and the reason while it cannot "
               "(starting, no decode worker running, the store's disk failing writes, "
               "shutting down)",
    "security": [],
    "responses": {
        "200": {"description": '{"status": "ok"}'},
        "503": {"description": '{"status": "unavailable", "reason": "..."}'}}}}


_PROM_ANSWER = {
    "200": {"description": 'Prometheus 2.42\'s {"status":"success","data":{"resultType":'
                           '...,"result":...}}'},
    "400": {"description": 'bad_data: {"status":"error","errorType":"bad_data","error":'
                           '"..."}, in Prometheus\' words'},
    "401": _UNAUTHORIZED,
    "422": {"description": "execution: includes what the engine cannot evaluate yet, named"}}
_PROM_QUERY = {"summary": "PromQL instant query (Prometheus 2.42's API; so far selectors of "
                          "gauges and sums, rate/increase/delta/irate/idelta, operators, "
                          "literals, vector(), time(), pi())",
               "parameters": [_param("query", "PromQL", True, "1+1"),
                              _param("time", "seconds or RFC 3339; default now"),
                              _param("timeout", "duration")],
               "responses": _PROM_ANSWER}
_PROM_RANGE = {"summary": "PromQL range query (Prometheus 2.42's API); a matrix",
               "parameters": [_param("query", "PromQL", True),
                              _param("start", "seconds or RFC 3339", True),
                              _param("end", "seconds or RFC 3339", True),
                              _param("step", "seconds or a duration; at most 11,000 points",
                                     True),
                              _param("timeout", "duration")],
               "responses": _PROM_ANSWER}
_MATCH = _param("match[]", "series selector, repeated (required for series)", False, "up")
_PROM_META = {"parameters": [_MATCH, _param("start", "seconds or RFC 3339"),
                             _param("end", "seconds or RFC 3339"),
                             _param("limit", "at most this many entries")],
              "responses": _PROM_ANSWER}
_PROMETHEUS = {
    "/prometheus/api/v1/series": {
        "get": {"summary": "the label sets of the series match[] selects (gauges and sums "
                           "so far)", **_PROM_META},
        "post": {"summary": "as GET, form-encoded", **_PROM_META}},
    "/prometheus/api/v1/labels": {
        "get": {"summary": "label names, sorted", **_PROM_META},
        "post": {"summary": "as GET, form-encoded", **_PROM_META}},
    "/prometheus/api/v1/label/{name}/values": {"get": {
        "summary": "a label's values, sorted (__name__: the metric names)", **_PROM_META}},
    "/prometheus/api/v1/query": {"get": _PROM_QUERY, "post": _PROM_QUERY},
    "/prometheus/api/v1/query_range": {"get": _PROM_RANGE, "post": _PROM_RANGE},
    "/prometheus/api/v1/query_exemplars": {
        "get": {"summary": "the exemplars of the series the query's selectors match (gauges "
                           "and sums so far)",
                "parameters": [_param("query", "PromQL", True),
                               _param("start", "seconds or RFC 3339"),
                               _param("end", "seconds or RFC 3339")],
                "responses": {**_PROM_ANSWER, "204": {"description": "no selector"}}}},
    "/prometheus/api/v1/metadata": {"get": {
        "summary": "each metric family's type, help and unit",
        "parameters": [_param("metric", "one family"), _param("limit", "at most this many")],
        "responses": _PROM_ANSWER}},
    "/prometheus/api/v1/status/buildinfo": {"get": {
        "summary": "version 2.42.0 (the PromQL dialect), revision = otel-hms's version",
        "responses": {"200": {"description": "build information"}, "401": _UNAUTHORIZED}}},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "otel-hms API", "version": __version__,
                 "description": "Query OpenTelemetry metrics stored by otel-hms."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "Series": _SERIES,
                "CardinalityUsage": _CARDINALITY_USAGE,
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": _HEALTH,
            "/readyz": _HEALTH,
            "/api/v1/status": {"get": {
                "summary": "writer, series, roll-up and decode counters; points rejected in "
                           "partial_success per reason (ingest); under 'cardinality' the "
                           "series counts and limits; under 'sql' the SQL endpoint's queries "
                           "running, answered, refused, too_large, timed_out, cancelled",
                "responses": {"200": {"description": "status object", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "series": {"type": "integer"},
                        "cardinality": {"$ref": "#/components/schemas/CardinalityUsage"}}}}}},
                              "401": _UNAUTHORIZED}}},
            "/api/v1/status/cardinality": {"get": {
                "summary": "where the series are: the metrics with the most series, the label "
                           "names with the most distinct values (point and resource attributes "
                           "apart), the label=value pairs in the most series, totals against "
                           "max_series and max_series_per_metric, and what the limits refused",
                "parameters": [
                    {"name": "metric", "in": "query", "schema": {"type": "string"},
                     "description": "narrow the lists to this metric"},
                    {"name": "top", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                "default": 10}, "description": "length of each list"}],
                "responses": {
                    "200": {"description": "the cardinality view", "content": {
                        "application/json": {"schema": _CARDINALITY}}},
                    "400": _ERROR, "401": _UNAUTHORIZED,
                    "404": {"description": "no such metric"}}}},
            "/api/v1/query": {"get": {
                "summary": "a metric over a range, aggregated per step, grouped by attributes",
                "parameters": _QUERY_PARAMS,
                "responses": {
                    "200": {"description": "series",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Series"}}}},
                    "400": _ERROR, "401": _UNAUTHORIZED,
                    "404": {"description": "no such metric"},
                    "413": {"description": "more than query_max_series series or "
                                           "query_max_points points; the error names the "
                                           "setting", "content": _ERROR["content"]},
                    "503": _UNAVAILABLE}}},
            "/api/v1/stream": {"get": {
                "summary": "Server-Sent Events: the range once, then every new or changed "
                           "point after each commit (event 'points', data like /api/v1/query)",
                "parameters": [p for p in _QUERY_PARAMS if p["name"] not in ("start", "end")],
                "responses": {"200": {"description": "text/event-stream"},
                              "400": _ERROR, "401": _UNAUTHORIZED}}},
            "/api/v1/metrics": {"get": {
                "summary": "every metric: name, kind, unit, description, temporality, "
                           "monotonic, series count, first and last point time",
                "responses": {"200": {"description": "{metrics: [...], now_ms: the "
                                                     "server's clock}"},
                              "401": _UNAUTHORIZED, "503": _UNAVAILABLE}}},
            "/api/v1/sql": {"post": {
                "summary": "one read-only SELECT, run in a read-only transaction; no files, "
                           "network, writes, settings or side-effecting functions; bounded by "
                           "sql_timeout_seconds (the whole request), sql_row_limit, "
                           "sql_max_answer_bytes and memory_limit; cancelled when the client "
                           "disconnects",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["sql"],
                               "properties": {"sql": {"type": "string"}}},
                    "example": {"sql": "SELECT * FROM rate('jobs', INTERVAL 5 MINUTE)"}}}},
                "responses": {
                    "200": {"description": "columns, types, rows, truncated",
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "properties": {
                                    "columns": {"type": "array", "items": {"type": "string"}},
                                    "types": {"type": "array", "items": {"type": "string"}},
                                    "rows": {"type": "array", "items": {"type": "array"}},
                                    "truncated": {"type": "boolean"}}}}}},
                    "400": {"description": "not one read-only SELECT (the error says what is "
                                           "refused), a failed query, or over "
                                           "sql_timeout_seconds",
                            "content": _ERROR["content"]},
                    "401": _UNAUTHORIZED, "503": _UNAVAILABLE,
                    "413": {"description": "the answer is over sql_max_answer_bytes, or the "
                                           "query needs more than memory_limit; the error "
                                           "names the setting",
                            "content": _ERROR["content"]}}}},
            "/api/v1/export": {"post": _EXPORT},
            "/api/v1/dashboards": {"get": {
                "summary": "the YAML dashboards of --dashboards DIR with their parsed panels, "
                           "and a one-line error per file that does not load",
                "responses": {"200": {"description": "{dashboards: [...], errors: [...]}"},
                              "401": _UNAUTHORIZED}}},
            "/": {"get": {"summary": "the web dashboard (its assets under /static/ need no "
                                     "token; its requests carry it)", "security": [],
                          "responses": {"200": {"description": "text/html"}}}},
            "/api/v1/openapi.json": {"get": {"summary": "this document", "security": [],
                                             "responses": {"200": {"description": "OpenAPI"}}}},
            **_PROMETHEUS,
        },
    }
