"""The store's tables and the SQL views users query.

Series (metric identity + resource + scope + point attributes) are stored once in ``series``
under a 64-bit id computed at ingest; point tables stay narrow (series id, times, value) so
windowed aggregation groups on a fixed-width key.  The ``otel_metrics_*`` views put the two
back together with the column names of the OpenTelemetry Collector's ClickHouse exporter, so
SQL written for that schema carries over.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from . import late_points, nested_columns, point_macros, sum_chain

SCHEMA_VERSION = "5"
# 1 -> 2: histogram roll-ups hold one row per series and minute/hour with lists of bucket
# bounds and increases (``rollup_*_histograms``), not one row per bucket (``rollup_*_buckets``,
# now a view): 15 times fewer rows for the quantile helpers to scan, join and group.
# 2 -> 3: histogram roll-up rows carry ``layout``, a hash of their bounds, so a query can tell
# bucket layouts apart without hashing every row's lists (query/rollup_quantiles.py).
# 3 -> 4: sum points store their increase and the time of their series' previous point
# (storage/sum_chain.py), so rates need no window over the points; ``sum_chain_breaks``.
# 4 -> 5: ``rollup_late_points`` marks minutes whose roll-ups a late point changes
# (storage/late_points.py); an older otel-hms would neither fold them in nor spare the raw
# points they need from retention, so it must not open the store.

EXEMPLAR_TYPE = (
    "STRUCT(filtered_attributes JSON, time_unix_nano BIGINT, value DOUBLE, value_int BIGINT,"
    " span_id VARCHAR, trace_id VARCHAR)[]"
)
QUANTILE_TYPE = "STRUCT(quantile DOUBLE, value DOUBLE)[]"

# Columns every point table starts with, in insertion order.
_POINT_PREFIX = """
    series_id UBIGINT NOT NULL,
    start_time_unix_nano BIGINT,
    time_unix_nano BIGINT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
"""

TABLES: dict[str, str] = {
    "otel_hms_meta": """
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    """,
    "series": """
        series_id UBIGINT NOT NULL,
        metric_type VARCHAR NOT NULL,
        metric_name VARCHAR NOT NULL,
        metric_description VARCHAR,
        metric_unit VARCHAR,
        aggregation_temporality INTEGER,
        is_monotonic BOOLEAN,
        service_name VARCHAR,
        resource_attributes MAP(VARCHAR, VARCHAR),
        resource_attributes_typed JSON,
        resource_dropped_attributes_count UINTEGER,
        resource_schema_url VARCHAR,
        scope_name VARCHAR,
        scope_version VARCHAR,
        scope_attributes MAP(VARCHAR, VARCHAR),
        scope_attributes_typed JSON,
        scope_dropped_attributes_count UINTEGER,
        scope_schema_url VARCHAR,
        attributes MAP(VARCHAR, VARCHAR),
        attributes_typed JSON,
        metric_metadata JSON,
        first_seen TIMESTAMPTZ NOT NULL
    """,
    "points_gauge": _POINT_PREFIX + f"""
        value DOUBLE,
        value_int BIGINT,
        flags UINTEGER NOT NULL,
        exemplars {EXEMPLAR_TYPE}
    """,
    "points_sum": _POINT_PREFIX + f"""
        value DOUBLE,
        value_int BIGINT,
        flags UINTEGER NOT NULL,
        exemplars {EXEMPLAR_TYPE},
        {", ".join(f"{name} {kind}" for name, kind in sum_chain.COLUMNS.items())}
    """,
    sum_chain.BREAKS_TABLE: sum_chain.BREAKS_COLUMNS,
    late_points.LATE_TABLE: late_points.LATE_COLUMNS,
    "points_histogram": _POINT_PREFIX + f"""
        count UBIGINT NOT NULL,
        sum DOUBLE,
        min DOUBLE,
        max DOUBLE,
        bucket_counts UBIGINT[] NOT NULL,
        explicit_bounds DOUBLE[] NOT NULL,
        flags UINTEGER NOT NULL,
        exemplars {EXEMPLAR_TYPE}
    """,
    "points_exp_histogram": _POINT_PREFIX + f"""
        count UBIGINT NOT NULL,
        sum DOUBLE,
        min DOUBLE,
        max DOUBLE,
        scale INTEGER NOT NULL,
        zero_count UBIGINT NOT NULL,
        zero_threshold DOUBLE NOT NULL,
        positive_offset INTEGER NOT NULL,
        positive_bucket_counts UBIGINT[] NOT NULL,
        negative_offset INTEGER NOT NULL,
        negative_bucket_counts UBIGINT[] NOT NULL,
        flags UINTEGER NOT NULL,
        exemplars {EXEMPLAR_TYPE}
    """,
    "points_summary": _POINT_PREFIX + f"""
        count UBIGINT NOT NULL,
        sum DOUBLE NOT NULL,
        quantile_values {QUANTILE_TYPE} NOT NULL,
        flags UINTEGER NOT NULL
    """,
}

# Roll-ups (see storage/rollups.py): per series and minute or hour, the partial aggregates
# the SQL helpers combine: number stats with the counter increase, histogram bucket increases.
_ROLLUP_NUMBER = """
    series_id UBIGINT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    count UBIGINT NOT NULL,
    sum DOUBLE,
    min DOUBLE,
    max DOUBLE,
    last DOUBLE,
    last_time TIMESTAMPTZ,
    increase DOUBLE
"""
# Histogram buckets in (upper, lower) order: the i-th bucket is (lower[i], upper[i]] and saw
# n[i] observations; ``layout`` is ``hash(lower, upper)`` (see ``LIST_BUCKETS``).
_ROLLUP_HISTOGRAMS = """
    series_id UBIGINT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    lower DOUBLE[] NOT NULL,
    upper DOUBLE[] NOT NULL,
    n DOUBLE[] NOT NULL,
    layout UBIGINT
"""
for _res in ("1m", "1h"):
    TABLES[f"rollup_{_res}_number"] = _ROLLUP_NUMBER
    TABLES[f"rollup_{_res}_histograms"] = _ROLLUP_HISTOGRAMS

# Rows of (series_id, time, lower, upper, n), one per bucket, from ``{rows}``, to one row per
# series and time with the buckets as lists.
LIST_BUCKETS = """
    SELECT series_id, time, lower, upper, n, hash(lower, upper) AS layout
    FROM (SELECT series_id, time, list(lower ORDER BY upper, lower) AS lower,
                 list(upper ORDER BY upper, lower) AS upper, list(n ORDER BY upper, lower) AS n
          FROM ({rows}) GROUP BY series_id, time)
"""

POINT_TABLES = {
    "gauge": "points_gauge",
    "sum": "points_sum",
    "histogram": "points_histogram",
    "exponential_histogram": "points_exp_histogram",
    "summary": "points_summary",
}

_SERIES_COLUMNS = """
    s.resource_attributes AS ResourceAttributes,
    s.resource_schema_url AS ResourceSchemaUrl,
    s.scope_name AS ScopeName,
    s.scope_version AS ScopeVersion,
    s.scope_attributes AS ScopeAttributes,
    s.scope_dropped_attributes_count AS ScopeDroppedAttrCount,
    s.scope_schema_url AS ScopeSchemaUrl,
    s.service_name AS ServiceName,
    s.metric_name AS MetricName,
    s.metric_description AS MetricDescription,
    s.metric_unit AS MetricUnit,
    s.attributes AS Attributes,
    make_timestamptz(p.start_time_unix_nano // 1000) AS StartTimeUnix,
    p.time AS TimeUnix,
"""

_TYPED_COLUMNS = """
    p.series_id AS SeriesId,
    p.start_time_unix_nano AS StartTimeUnixNano,
    p.time_unix_nano AS TimeUnixNano,
    s.attributes_typed AS AttributesTyped,
    s.resource_attributes_typed AS ResourceAttributesTyped,
    s.scope_attributes_typed AS ScopeAttributesTyped
"""

_EXEMPLARS = """
    list_transform(p.exemplars, lambda e: {
        'FilteredAttributes': e.filtered_attributes,
        'TimeUnix': make_timestamptz(e.time_unix_nano // 1000),
        'Value': coalesce(e.value_int::DOUBLE, e.value),
        'ValueInt': e.value_int,
        'SpanId': e.span_id,
        'TraceId': e.trace_id
    }) AS Exemplars,
""" + nested_columns.EXEMPLARS

_NUMBER_VALUE = """
    coalesce(p.value_int::DOUBLE, p.value) AS Value,
    p.value_int AS ValueInt,
    p.flags AS Flags,
"""

_HISTOGRAM_COMMON = """
    p.count AS Count,
    p.sum AS Sum,
"""

VIEWS: dict[str, str] = {
    "otel_metrics_gauge": f"""
        SELECT {_SERIES_COLUMNS} {_NUMBER_VALUE} {_EXEMPLARS} {_TYPED_COLUMNS}
        FROM points_gauge p JOIN series s USING (series_id)
    """,
    "otel_metrics_sum": f"""
        SELECT {_SERIES_COLUMNS} {_NUMBER_VALUE} {_EXEMPLARS}
            s.aggregation_temporality AS AggregationTemporality,
            s.is_monotonic AS IsMonotonic,
            {_TYPED_COLUMNS}
        FROM points_sum p JOIN series s USING (series_id)
    """,
    "otel_metrics_histogram": f"""
        SELECT {_SERIES_COLUMNS} {_HISTOGRAM_COMMON}
            p.bucket_counts AS BucketCounts,
            p.explicit_bounds AS ExplicitBounds,
            {_EXEMPLARS}
            p.flags AS Flags,
            p.min AS Min,
            p.max AS Max,
            s.aggregation_temporality AS AggregationTemporality,
            {_TYPED_COLUMNS}
        FROM points_histogram p JOIN series s USING (series_id)
    """,
    # The exporter's table name (its defaultExpHistogramSuffix); otel_metrics_exp_histogram,
    # this store's first name for it, stays as an alias below.
    "otel_metrics_exponential_histogram": f"""
        SELECT {_SERIES_COLUMNS} {_HISTOGRAM_COMMON}
            p.scale AS Scale,
            p.zero_count AS ZeroCount,
            p.zero_threshold AS ZeroThreshold,
            p.positive_offset AS PositiveOffset,
            p.positive_bucket_counts AS PositiveBucketCounts,
            p.negative_offset AS NegativeOffset,
            p.negative_bucket_counts AS NegativeBucketCounts,
            {_EXEMPLARS}
            p.flags AS Flags,
            p.min AS Min,
            p.max AS Max,
            s.aggregation_temporality AS AggregationTemporality,
            {_TYPED_COLUMNS}
        FROM points_exp_histogram p JOIN series s USING (series_id)
    """,
    "otel_metrics_exp_histogram": "SELECT * FROM otel_metrics_exponential_histogram",
    "otel_metrics_summary": f"""
        SELECT {_SERIES_COLUMNS} {_HISTOGRAM_COMMON}
            list_transform(p.quantile_values,
                lambda q: {{'Quantile': q.quantile, 'Value': q.value}}) AS ValueAtQuantiles,
            {nested_columns.VALUE_AT_QUANTILES}
            p.flags AS Flags,
            {_TYPED_COLUMNS}
        FROM points_summary p JOIN series s USING (series_id)
    """,
    # The common case in one line: every gauge and sum point with its metric and labels.
    "otel_points": """
        SELECT s.metric_name AS MetricName, s.metric_type AS MetricType,
               s.service_name AS ServiceName, s.attributes AS Attributes,
               p.time AS TimeUnix, coalesce(p.value_int::DOUBLE, p.value) AS Value,
               p.series_id AS SeriesId
        FROM (SELECT series_id, time, value, value_int FROM points_gauge
              UNION ALL BY NAME
              SELECT series_id, time, value, value_int FROM points_sum) p
        JOIN series s USING (series_id)
    """,
    # The histogram roll-ups one row per bucket, as schema version 1 stored them.
    **{f"rollup_{res}_buckets": f"""
        SELECT series_id, time, unnest(lower) AS lower, unnest(upper) AS upper, unnest(n) AS n
        FROM rollup_{res}_histograms
    """ for res in ("1m", "1h")},
    # One row per series, the names people search by.
    "otel_series": """
        SELECT series_id AS SeriesId, metric_name AS MetricName, metric_type AS MetricType,
               metric_unit AS MetricUnit, metric_description AS MetricDescription,
               aggregation_temporality AS AggregationTemporality, is_monotonic AS IsMonotonic,
               service_name AS ServiceName, attributes AS Attributes,
               resource_attributes AS ResourceAttributes, scope_name AS ScopeName,
               scope_version AS ScopeVersion, first_seen AS FirstSeen
        FROM series
    """,
}


class NewerSchema(Exception):
    """The file was written by a newer otel-hms."""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and (re)create the views; safe on an existing store."""
    con.execute(f"CREATE TABLE IF NOT EXISTS otel_hms_meta ({TABLES['otel_hms_meta']})")
    found = con.execute(
        "SELECT value FROM otel_hms_meta WHERE key = 'schema_version'").fetchone()
    if found and int(found[0]) > int(SCHEMA_VERSION):
        raise NewerSchema(f"store schema version {found[0]} is newer than this otel-hms "
                          f"understands ({SCHEMA_VERSION}); upgrade otel-hms")
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    if found:
        for version, step in _MIGRATIONS.items():
            if int(found[0]) < version:
                _migrate(con, version, step)
    nested_columns.install(con)
    for name, body in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
    point_macros.install(con)
    con.execute("INSERT OR REPLACE INTO otel_hms_meta VALUES ('schema_version', ?)",
                [SCHEMA_VERSION])


def _migrate_histogram_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """Schema 1 -> 2: per-bucket histogram roll-up rows become list rows."""
    for res in ("1m", "1h"):
        old = con.execute("SELECT table_type FROM information_schema.tables "
                          "WHERE table_name = ?", [f"rollup_{res}_buckets"]).fetchone()
        if not old or old[0] != "BASE TABLE":
            continue
        rows = f"SELECT series_id, time, lower, upper, n FROM rollup_{res}_buckets"
        con.execute(f"INSERT INTO rollup_{res}_histograms "  # time order: scans prune
                    + LIST_BUCKETS.format(rows=rows) + " ORDER BY time, series_id")
        con.execute(f"DROP TABLE rollup_{res}_buckets")


def _add_layouts(con: duckdb.DuckDBPyConnection) -> None:
    """Schema 2 -> 3: histogram roll-up rows get their ``layout``."""
    for res in ("1m", "1h"):
        table = f"rollup_{res}_histograms"
        has = con.execute("SELECT count(*) FROM information_schema.columns "
                          "WHERE table_name = ? AND column_name = 'layout'",
                          [table]).fetchone()
        if not has or not has[0]:
            con.execute(f"ALTER TABLE {table} ADD COLUMN layout UBIGINT")
        con.execute(f"UPDATE {table} SET layout = hash(lower, upper) WHERE layout IS NULL")


# Every sum point's increase and previous time in one window pass (the chain of
# storage/sum_chain.py, in the order it defines), and the copies of a time that disagree.
_SUM_CHAIN = """
    SELECT rowid AS rid, series_id, time, time_unix_nano AS t,
           coalesce(start_time_unix_nano, 0) AS st, coalesce(value_int::DOUBLE, value) AS v,
           lag(time_unix_nano) OVER w AS pt, lag(coalesce(value_int::DOUBLE, value)) OVER w AS pv,
           lag(coalesce(start_time_unix_nano, 0)) OVER w AS pst
    FROM points_sum
    WHERE flags & 1 = 0 AND NOT isnan(coalesce(value_int::DOUBLE, value))
    WINDOW w AS (PARTITION BY series_id ORDER BY time_unix_nano,
                 coalesce(value_int::DOUBLE, value), coalesce(start_time_unix_nano, 0))
"""


def _migrate_sum_chain(con: duckdb.DuckDBPyConnection) -> None:
    """Schema 3 -> 4: fill the sum points' increases and the breaks."""
    for name, kind in sum_chain.COLUMNS.items():
        con.execute(f"ALTER TABLE points_sum ADD COLUMN IF NOT EXISTS {name} {kind}")
    con.execute(f"CREATE TEMP TABLE _otel_hms_chain AS {_SUM_CHAIN}")
    con.execute("""
        UPDATE points_sum SET prev_time_unix_nano = c.pt,
            increase = CASE WHEN c.pt IS NULL THEN c.v
                            WHEN c.pt = c.t THEN CASE WHEN c.st = c.pst THEN c.v - c.pv END
                            WHEN c.st <> c.pst OR c.v < c.pv THEN c.v
                            ELSE c.v - c.pv END
        FROM _otel_hms_chain c WHERE points_sum.rowid = c.rid
    """)
    con.execute(f"DELETE FROM {sum_chain.BREAKS_TABLE}")
    con.execute(f"""
        INSERT INTO {sum_chain.BREAKS_TABLE}
        SELECT series_id, min(time), max(time) FROM _otel_hms_chain
        WHERE pt = t AND (v <> pv OR st <> pst) GROUP BY series_id
    """)
    con.execute("DROP TABLE _otel_hms_chain")


# Each step brings a store from the version before to its own; ``_migrate`` runs it.
_MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {
    2: _migrate_histogram_rollups,
    3: _add_layouts,
    4: _migrate_sum_chain,
    5: lambda con: None,  # the table of late points is created with the others
}


def _migrate(con: duckdb.DuckDBPyConnection, version: int,
             step: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """One migration step and its version stamp commit together or not at all."""
    con.execute("SET enable_progress_bar = false")  # a server's stdout is its log
    con.execute("BEGIN TRANSACTION")
    try:
        step(con)
        con.execute("INSERT OR REPLACE INTO otel_hms_meta VALUES ('schema_version', ?)",
                    [str(version)])
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
