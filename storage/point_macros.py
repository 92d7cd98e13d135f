"""The store's reading of its own points: table macros every query and roll-up builds on.

What a stored point means is decided here, once, for the roll-ups (storage/rollups.py) and
for the query layer's helpers (query/sql_helpers.py) alike:

* ``otel_number_points(metric, lo, hi)``: gauge and sum points in ``[lo, hi)`` without
  points flagged no-recorded-value, NaN values and duplicates (a retried export stored twice:
  same series and time).
* ``otel_sum_increments(metric, period, until, lookback, step)``: per sum point, the increase
  it shows: the stored chain's (storage/sum_chain.py) where it holds, else a window over the
  points, by the rule ``stored_increase`` states.
* ``otel_bucket_increments(...)``: per histogram point and bucket, the observations it adds.
* ``otel_rollup_until(source)``: the roll-ups' watermarks, rewritten as each one moves.

Ranges share one shape of arguments: ``period`` (an INTERVAL back from ``until``, default
``now()``), ``step`` and ``lookback`` (how far back a counter's baseline is looked for).
"""

from __future__ import annotations

import duckdb

METRIC = "(metric IS NULL OR s.metric_name = metric)"
UNTIL = "coalesce(until, now())::TIMESTAMPTZ"
SINCE = f"({UNTIL} - period)"
STEP = "coalesce(step, period)"
LOOKBACK = f"coalesce(lookback, greatest({STEP}, INTERVAL 5 MINUTE))"


def cumulative_increase(since: str, lookback: str, p: str = "p.") -> str:
    """The increase a cumulative sum point (columns prefixed ``p``) adds to a range starting
    at ``since``, from its stored chain (storage/sum_chain.py): its stored increase when the
    point before it lies in the range or ``lookback`` before it; else (no baseline) its value
    only when its start time lies in the range."""
    return f"""
        CASE WHEN {p}prev_time_unix_nano >= epoch_us({since} - {lookback}) * 1000
             THEN {p}increase
             WHEN {p}start_time_unix_nano > 0
                  AND {p}start_time_unix_nano >= epoch_us({since}) * 1000
             THEN coalesce({p}value_int::DOUBLE, {p}value)
        END"""


def delta_increase(since: str, lookback: str, p: str = "p.") -> str:
    """The same for a delta sum point: its value, or for a copy of the time before it (a
    retried export) the stored increase over that copy (0 when identical)."""
    return f"""
        CASE WHEN {p}prev_time_unix_nano >= epoch_us({since} - {lookback}) * 1000
                  AND {p}prev_time_unix_nano = {p}time_unix_nano
             THEN {p}increase
             ELSE coalesce({p}value_int::DOUBLE, {p}value)
        END"""


def stored_increase(since: str, lookback: str) -> str:
    """The increase a sum point ``p`` of series ``s`` adds to a range starting at ``since``:
    the counter-increase rule, one definition for ``otel_sum_increments`` and the query API's
    flat statement (query/counters.py)."""
    return f"""
        CASE WHEN s.aggregation_temporality = 1 THEN {delta_increase(since, lookback)}
             ELSE {cumulative_increase(since, lookback)}
        END"""


MACROS: dict[str, str] = {
    # Gauge and sum points in [lo, hi), deduplicated, no NaN, no no-recorded-value.
    "otel_number_points": f"""
        (metric, lo, hi) AS TABLE
        SELECT p.series_id, p.time, coalesce(p.value_int::DOUBLE, p.value) AS v
        FROM (SELECT series_id, time, time_unix_nano, value, value_int, flags FROM points_gauge
              UNION ALL
              SELECT series_id, time, time_unix_nano, value, value_int, flags FROM points_sum) p
        JOIN series s USING (series_id)
        WHERE {METRIC} AND p.time >= lo AND p.time < hi
          AND p.flags & 1 = 0 AND NOT isnan(coalesce(p.value_int::DOUBLE, p.value))
        QUALIFY row_number() OVER (PARTITION BY p.series_id, p.time_unix_nano) = 1
    """,
    # Per sum point in the range: the increase it shows (see the module docstring).
    "otel_sum_increments": f"""
        (metric, period, until := NULL, lookback := NULL, step := NULL) AS TABLE
        WITH broken AS (
            -- Series whose stored increases (storage/sum_chain.py) may be wrong near the
            -- range: they take the window below; every other point its stored increase.
            SELECT DISTINCT series_id FROM sum_chain_breaks
            WHERE hi >= {SINCE} - {LOOKBACK} AND lo < {UNTIL}
        ), chained AS (
            SELECT p.series_id, p.time,
                   {stored_increase(SINCE, LOOKBACK)} AS delta
            FROM points_sum p JOIN series s USING (series_id)
            WHERE {METRIC}
              AND p.time >= {SINCE} AND p.time < {UNTIL}
              AND p.flags & 1 = 0 AND NOT isnan(coalesce(p.value_int::DOUBLE, p.value))
              AND p.series_id NOT IN (SELECT series_id FROM broken)
        ), base AS (
            -- Per series, the last point before the range (within lookback): the baseline.
            SELECT p.series_id,
                   arg_max(coalesce(p.value_int::DOUBLE, p.value), p.time_unix_nano) AS bv,
                   arg_max(p.start_time_unix_nano, p.time_unix_nano) AS bst
            FROM points_sum p JOIN series s USING (series_id)
            WHERE {METRIC}
              AND p.time >= {SINCE} - {LOOKBACK} AND p.time < {SINCE}
              AND p.flags & 1 = 0 AND NOT isnan(coalesce(p.value_int::DOUBLE, p.value))
              AND p.series_id IN (SELECT series_id FROM broken)
            GROUP BY p.series_id
        ), lagged AS (
            -- One window pass: each point with the one before it.  A point at the time of
            -- the one before it is a duplicate (a retried export): below, it adds its step
            -- from the copy before it (0 for identical copies), so a time's copies count as
            -- the last (largest) of them and the next point's baseline is that same copy.
            SELECT p.series_id, p.time, p.time_unix_nano AS t, p.start_time_unix_nano AS st,
                   coalesce(p.value_int::DOUBLE, p.value) AS v, s.aggregation_temporality AS tp,
                   lag(p.time_unix_nano) OVER w AS lt,
                   lag(coalesce(p.value_int::DOUBLE, p.value)) OVER w AS lv,
                   lag(p.start_time_unix_nano) OVER w AS lst
            FROM points_sum p JOIN series s USING (series_id)
            WHERE {METRIC}
              AND p.time >= {SINCE} AND p.time < {UNTIL}
              AND p.flags & 1 = 0 AND NOT isnan(coalesce(p.value_int::DOUBLE, p.value))
              AND p.series_id IN (SELECT series_id FROM broken)
            WINDOW w AS (PARTITION BY p.series_id ORDER BY p.time_unix_nano,
                         coalesce(p.value_int::DOUBLE, p.value), p.start_time_unix_nano)
        ), ordered AS (
            SELECT l.series_id, l.time, l.st, l.v, l.tp, l.lt = l.t AS dup,
                   CASE WHEN l.lt IS NULL THEN b.bv ELSE l.lv END AS pv,
                   CASE WHEN l.lt IS NULL THEN b.bst ELSE l.lst END AS pst
            FROM lagged l LEFT JOIN base b USING (series_id)
        )
        SELECT series_id, time,
               CASE WHEN dup THEN CASE WHEN tp = 1 OR st = pst THEN v - pv END
                    WHEN tp = 1 THEN v
                    WHEN pv IS NULL THEN
                        CASE WHEN st > 0 AND make_timestamptz(st // 1000) >= {SINCE}
                             THEN v END
                    WHEN st <> pst OR v < pv THEN v
                    ELSE v - pv
               END AS delta
        FROM ordered
        UNION ALL
        SELECT series_id, time, delta FROM chained
    """,
    # Per histogram point and bucket: the observations it adds, with the bucket's bounds.
    # Explicit buckets: (previous bound, bound]; exponential: (base^i, base^(i+1)] at the
    # smallest scale of the metric in the range, negative buckets mirrored, the zero bucket
    # (0, zero_threshold].
    "otel_bucket_increments": f"""
        (metric, period, until := NULL, lookback := NULL, step := NULL) AS TABLE
        WITH hist_points AS (
            SELECT p.*, s.aggregation_temporality AS tp
            FROM points_histogram p JOIN series s USING (series_id)
            WHERE {METRIC}
              AND p.time >= {SINCE} - {LOOKBACK} AND p.time < {UNTIL} AND p.flags & 1 = 0
            QUALIFY row_number() OVER (PARTITION BY p.series_id, p.time_unix_nano) = 1
        ), explicit AS (
            SELECT series_id, time, time_unix_nano, start_time_unix_nano AS st,
                   count AS total, tp,
                   unnest(range(len(bucket_counts))) AS i,
                   unnest(bucket_counts)::DOUBLE AS n,
                   unnest(list_prepend(NULL, explicit_bounds::DOUBLE[])) AS lower,
                   unnest(list_append(explicit_bounds::DOUBLE[], 'inf'::DOUBLE)) AS upper
            FROM hist_points
        ), exp_points AS (
            SELECT p.*, s.aggregation_temporality AS tp,
                   min(p.scale) OVER (PARTITION BY s.metric_name) AS min_scale
            FROM points_exp_histogram p JOIN series s USING (series_id)
            WHERE {METRIC}
              AND p.time >= {SINCE} - {LOOKBACK} AND p.time < {UNTIL} AND p.flags & 1 = 0
            QUALIFY row_number() OVER (PARTITION BY p.series_id, p.time_unix_nano) = 1
        ), exp_buckets AS (
            SELECT series_id, time, time_unix_nano, start_time_unix_nano AS st, count AS total,
                   tp, min_scale, zero_threshold AS zt, 1 AS sign,
                   (positive_offset + unnest(range(len(positive_bucket_counts))))
                       >> (scale - min_scale) AS idx,
                   unnest(positive_bucket_counts)::DOUBLE AS n
            FROM exp_points
            UNION ALL
            SELECT series_id, time, time_unix_nano, start_time_unix_nano, count, tp,
                   min_scale, zero_threshold, -1,
                   (negative_offset + unnest(range(len(negative_bucket_counts))))
                       >> (scale - min_scale),
                   unnest(negative_bucket_counts)::DOUBLE
            FROM exp_points
            UNION ALL
            SELECT series_id, time, time_unix_nano, start_time_unix_nano, count, tp,
                   min_scale, zero_threshold, 0, 0, zero_count::DOUBLE
            FROM exp_points
        ), exponential AS (
            SELECT series_id, time, time_unix_nano, st, total, tp,
                   sign * 1000000000 + idx AS i, sum(n) AS n,
                   CASE sign WHEN 1 THEN pow(2.0, pow(2.0, -min_scale) * idx)
                             WHEN -1 THEN -pow(2.0, pow(2.0, -min_scale) * (idx + 1))
                             ELSE 0.0 END AS lower,
                   CASE sign WHEN 1 THEN pow(2.0, pow(2.0, -min_scale) * (idx + 1))
                             WHEN -1 THEN -pow(2.0, pow(2.0, -min_scale) * idx)
                             ELSE zt END AS upper
            FROM exp_buckets
            GROUP BY series_id, time, time_unix_nano, st, total, tp, min_scale, zt, sign, idx
        ), buckets AS (
            SELECT series_id, time, time_unix_nano, st, total, tp, i, n, lower, upper
            FROM explicit
            UNION ALL
            SELECT series_id, time, time_unix_nano, st, total, tp, i, n, lower, upper
            FROM exponential
        ), points AS (
            SELECT DISTINCT series_id, time_unix_nano, st, total FROM buckets
        ), marked AS (
            -- A point-level reset: the count dropped or the start time changed.
            SELECT series_id, time_unix_nano,
                   lag(time_unix_nano) OVER w AS prev_t,
                   coalesce(total < lag(total) OVER w OR st <> lag(st) OVER w, false) AS reset
            FROM points WINDOW w AS (PARTITION BY series_id ORDER BY time_unix_nano)
        ), ordered AS (
            SELECT b.*, m.prev_t, m.reset,
                   lag(b.n) OVER (PARTITION BY b.series_id, b.i ORDER BY b.time_unix_nano) AS pn
            FROM buckets b JOIN marked m USING (series_id, time_unix_nano)
        )
        SELECT series_id, time, lower, upper,
               CASE WHEN tp = 1 THEN n
                    WHEN prev_t IS NULL THEN
                        CASE WHEN st > 0 AND make_timestamptz(st // 1000) >= {SINCE}
                             THEN n END
                    WHEN reset THEN n
                    ELSE greatest(n - coalesce(pn, 0), 0)
               END AS n
        FROM ordered
        WHERE time >= {SINCE}
    """,
}


def install_watermarks(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create ``otel_rollup_until(source)`` from the watermarks in ``otel_hms_meta``.

    Called in the transaction that moves a watermark, so a reader sees the macro and the
    roll-up rows of the same commit.
    """
    rows = con.execute("SELECT key, value FROM otel_hms_meta WHERE key IN "
                       "('rollup_1m_until', 'rollup_1h_until')").fetchall()
    marks = {key: value for key, value in rows if value}
    cases = " ".join(
        f"WHEN '{res}' THEN TIMESTAMPTZ '{marks[f'rollup_{res}_until']}'"
        for res in ("1m", "1h") if f"rollup_{res}_until" in marks)
    body = (f"CASE source {cases} ELSE '-infinity'::TIMESTAMPTZ END" if cases
            else "'-infinity'::TIMESTAMPTZ")
    con.execute(f"CREATE OR REPLACE MACRO otel_rollup_until(source) AS {body}")


def install(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the watermarks macro and every point macro."""
    install_watermarks(con)
    for name, body in MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
