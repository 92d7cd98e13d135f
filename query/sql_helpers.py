"""SQL helpers in every store: counter rates, histogram quantiles, windowed stats.

The query layer installs them (``install``) over the store's own point macros
(``storage.point_macros``: deduplicated points, each sum point's increase, each histogram
point's bucket increases), when a server, an embedded exporter or a rule test opens a store.

Cumulative counters with resets and bucketed histograms make everyday questions hard in raw
SQL, so each one is a DuckDB table macro (``SELECT * FROM rate('requests', INTERVAL 5
MINUTE)``).  They share one shape of arguments and one shape of result:

* ``metric``: the metric name; ``period``: an INTERVAL, how far back from ``until``
  (default ``now()``); ``step``: bucket width on a grid whose origin is the range start
  (default: one bucket, the whole period); ``group_by``: attribute keys to aggregate series
  by (default: one row per series); ``match``: a ``MAP`` of attribute values a series must
  have; ``source``: ``'raw'`` points (default) or the ``'1m'`` / ``'1h'`` roll-ups (exact
  for a range and step on their bucket boundaries; the part after the roll-up's watermark
  comes from raw points).
* Result: ``Labels`` (a map), ``TimeUnix`` (the bucket's start), ``Value`` and, per series,
  ``SeriesId``.  Points count in ``[since, until)`` with ``since = until - period``.

Points flagged no-recorded-value, NaN values and duplicate points (a retried export stored
twice: same series and time) are left out; copies of one time that disagree count as the
largest of them.  Semantics, chosen to be exact rather than
estimated:

* ``increase``: for delta sums, the sum of the points; for cumulative sums, the sum of the
  differences between consecutive points, where the baseline of the first point in a bucket
  is the point before it (looked back as far as ``lookback``, default the larger of ``step``
  and 5 minutes), as VictoriaMetrics does.  A drop in value or a new start time is a reset:
  the new value is the increase since the reset.  A series whose first point has no baseline
  counts its whole value only when its start time lies inside the range (it started there).
  Nothing is extrapolated to the window's edges (Prometheus does): an integer counter gives
  an integer increase.
* ``rate``: ``increase`` divided by the bucket width in seconds.
* ``histogram_quantile``: bucket counts are turned into increases the same way (explicit and
  exponential histograms, both temporalities), summed over the group and the bucket, and the
  quantile is interpolated linearly inside the bucket that holds it, as Prometheus does
  (the +Inf bucket answers its lower bound).  Exponential histograms are brought to the
  smallest scale seen, so scale changes mid-stream merge correctly.
* ``sla_adherence``: the share of observations at or under a threshold, from the same bucket
  increases (linear inside the bucket the threshold falls in; exact at a bucket bound).
"""

from __future__ import annotations

import duckdb

from otel_hms.storage.point_macros import METRIC, SINCE, STEP, UNTIL

# Labels of a series: its point attributes and service.name, or only the group_by keys (looked
# up in the point attributes, then the resource attributes).
_SERIES_LABELS = "map_concat(MAP {'service.name': coalesce(s.service_name, '')}, s.attributes)"
_LABELS = f"""
    CASE WHEN group_by IS NULL THEN {_SERIES_LABELS}
         ELSE map(group_by, list_transform(group_by,
                  lambda k: coalesce(s.attributes[k], s.resource_attributes[k])))
    END
"""
_SERIES_KEY = "CASE WHEN group_by IS NULL THEN s.series_id END"
_GROUP_KEY = """
    CASE WHEN group_by IS NOT NULL THEN list_transform(group_by,
         lambda k: coalesce(s.attributes[k], s.resource_attributes[k])) END
"""
_MATCH = """
    (match IS NULL OR list_bool_and(list_transform(map_keys(match),
        lambda k: coalesce(s.attributes[k], s.resource_attributes[k]) = match[k])))
"""
# A step without months is a fixed number of microseconds (the store runs in UTC): the bucket
# start is then plain integer arithmetic, which is many times cheaper per point than
# time_bucket on TIMESTAMPTZ; the condition is constant, so the planner keeps one branch.
_STEP_US = f"(epoch({STEP}) * 1000000)::BIGINT"
_BUCKET = f"""
    CASE WHEN date_part('month', {STEP}) = 0 AND date_part('year', {STEP}) = 0
         THEN make_timestamptz(epoch_us({SINCE}) + (epoch_us(p.time) - epoch_us({SINCE}))
                               // {_STEP_US} * {_STEP_US})
         ELSE time_bucket({STEP}, p.time, {SINCE}) END
"""
# Roll-ups hold closed buckets up to their watermark; the rest of the range comes from raw.
# The watermarks are a scalar macro holding constants (rewritten with each watermark move,
# see ``install_watermarks``), so the planner folds them into the time filters and prunes
# scans, instead of joining every point to a subquery of otel_hms_meta.
_WATERMARK = "otel_rollup_until(source)"
_ROLLED = f"""
    r.time >= {SINCE} AND r.time < least({UNTIL}, {_WATERMARK})
"""
_TAIL_PERIOD = f"({UNTIL} - greatest({_WATERMARK}, {SINCE}))"
_TAIL = f"source <> 'raw' AND {_WATERMARK} < {UNTIL}"
_COMMON_ARGS = ("period, step := NULL, until := NULL, group_by := NULL, match := NULL, "
                "source := 'raw'")
_CHECK_SOURCE = """
    CASE WHEN source NOT IN ('raw', '1m', '1h')
         THEN error('source must be ''raw'', ''1m'' or ''1h''') END IS NULL
"""


def _rollup_union(table: str, columns: str) -> str:
    """Rows of both roll-up resolutions of ``table``, the one ``source`` names surviving."""
    return " UNION ALL ".join(f"""
        SELECT r.series_id, r.time, {columns}
        FROM rollup_{res}_{table} r JOIN series s USING (series_id)
        WHERE source = '{res}' AND {METRIC} AND {_ROLLED}
    """ for res in ("1m", "1h"))


def _rollup_increases() -> str:
    """Counter roll-up rows up to the watermark, joined to their group ``g``, bucketed."""
    return " UNION ALL ".join(f"""
        SELECT g.GroupId, g.SeriesId, {_BUCKET}, p.increase
        FROM rollup_{res}_number p JOIN g USING (series_id)
        WHERE source = '{res}' AND p.increase IS NOT NULL
          AND p.time >= {SINCE} AND p.time < least({UNTIL}, {_WATERMARK})
    """ for res in ("1m", "1h"))


MACROS: dict[str, str] = {
    # The three kinds of partial rows every helper aggregates, from raw points or roll-ups.
    "otel_number_partials": f"""
        (metric, period, until := NULL, source := 'raw', step := NULL) AS TABLE
        SELECT series_id, time, 1 AS count, v AS sum, v AS min, v AS max, v AS last,
               time AS last_time
        FROM otel_number_points(metric, {SINCE}, {UNTIL})
        WHERE source = 'raw'
        UNION ALL
        {_rollup_union("number", "r.count, r.sum, r.min, r.max, r.last, r.last_time")}
        UNION ALL
        SELECT series_id, time, 1, v, v, v, v, time
        FROM otel_number_points(metric, greatest({_WATERMARK}, {SINCE}), {UNTIL})
        WHERE {_TAIL}
    """,
    "otel_sum_partials": f"""
        (metric, period, until := NULL, lookback := NULL, source := 'raw', step := NULL)
        AS TABLE
        SELECT series_id, time, delta
        FROM otel_sum_increments(metric, period, until := until, lookback := lookback,
                                 step := step)
        WHERE source = 'raw'
        UNION ALL
        {_rollup_union("number", "r.increase")}
        UNION ALL
        SELECT series_id, time, delta
        FROM otel_sum_increments(metric, {_TAIL_PERIOD}, until := until, lookback := lookback,
                                 step := step)
        WHERE {_TAIL}
    """,
    # Bucket increases of raw points: the whole range (source 'raw') or the part after the
    # roll-up's watermark.
    "otel_bucket_partials": f"""
        (metric, period, until := NULL, lookback := NULL, source := 'raw', step := NULL)
        AS TABLE
        SELECT series_id, time, lower, upper, n
        FROM otel_bucket_increments(metric, period, until := until, lookback := lookback,
                                    step := step)
        WHERE source = 'raw'
        UNION ALL
        SELECT series_id, time, lower, upper, n
        FROM otel_bucket_increments(metric, {_TAIL_PERIOD}, until := until,
                                    lookback := lookback, step := step)
        WHERE {_TAIL}
    """,
    # Histogram roll-up rows up to the watermark: per series and minute or hour, the bucket
    # bounds and increases as lists.
    "otel_bucket_rollups": f"""
        (metric, period, until := NULL, source := 'raw') AS TABLE
        {_rollup_union("histograms", "r.lower, r.upper, r.n")}
    """,
    # One row per selected series: its group (a dense integer id, so the big aggregations
    # group on a fixed-width key), the group's labels and, ungrouped, the series id.  Labels
    # are built here once per series, never per point.
    "otel_series_groups": f"""
        (metric, group_by := NULL, match := NULL) AS TABLE
        SELECT s.series_id, {_LABELS} AS Labels, {_SERIES_KEY} AS SeriesId,
               dense_rank() OVER (ORDER BY {_GROUP_KEY}, {_SERIES_KEY}) AS GroupId
        FROM series s
        WHERE {METRIC} AND {_MATCH}
    """,
    # otel_series_groups without the labels: what the big aggregations join on.
    "otel_series_group_ids": f"""
        (metric, group_by := NULL, match := NULL) AS TABLE
        SELECT s.series_id, {_SERIES_KEY} AS SeriesId,
               dense_rank() OVER (ORDER BY {_GROUP_KEY}, {_SERIES_KEY}) AS GroupId
        FROM series s
        WHERE {METRIC} AND {_MATCH}
    """,
    # Per group (and, ungrouped, series) and bucket: the increase.  Each source joins its
    # rows to their group once (the group join also selects the metric's series); roll-up
    # rows without an increase (gauges) are left out by the scan.
    "otel_increase_groups": f"""
        (metric, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        WITH g AS (
            SELECT * FROM otel_series_group_ids(metric, group_by := group_by, match := match)
        )
        SELECT GroupId, SeriesId, TimeUnix, sum(delta) AS Value
        FROM (
            SELECT g.GroupId, g.SeriesId, {_BUCKET} AS TimeUnix, p.delta
            FROM otel_sum_increments(metric, period, until := until, lookback := lookback,
                                     step := step) p JOIN g USING (series_id)
            WHERE source = 'raw'
            UNION ALL
            {_rollup_increases()}
            UNION ALL
            SELECT g.GroupId, g.SeriesId, {_BUCKET}, p.delta
            FROM otel_sum_increments(metric, {_TAIL_PERIOD}, until := until,
                                     lookback := lookback, step := step) p JOIN g USING (series_id)
            WHERE {_TAIL}
        )
        WHERE delta IS NOT NULL AND {_CHECK_SOURCE}
        GROUP BY GroupId, SeriesId, TimeUnix
    """,
    "otel_group_labels": """
        (metric, group_by := NULL, match := NULL) AS TABLE
        SELECT GroupId, any_value(Labels) AS Labels, any_value(SeriesId) AS SeriesId
        FROM otel_series_groups(metric, group_by := group_by, match := match)
        GROUP BY GroupId
    """,
    "increase": f"""
        (metric, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        SELECT l.Labels, v.TimeUnix, v.Value, l.SeriesId
        FROM otel_increase_groups(metric, period, step := step, until := until,
                                  group_by := group_by, match := match, lookback := lookback,
                                  source := source) v
        JOIN otel_group_labels(metric, group_by := group_by, match := match) l
            USING (GroupId)
        ORDER BY TimeUnix
    """,
    "rate": f"""
        (metric, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        SELECT Labels, TimeUnix, Value / epoch({STEP}) AS Value, SeriesId
        FROM increase(metric, period, step := step, until := until, group_by := group_by,
                      match := match, lookback := lookback, source := source)
    """,
    # Observations per group, bucket of time and histogram bucket (groups by id only).
    # Roll-up rows are joined to their group as lists (15 times fewer rows than buckets),
    # then unnested.
    "otel_bucket_group_counts": f"""
        (metric, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        SELECT GroupId, TimeUnix, lower, upper, sum(n) AS n
        FROM (SELECT g.GroupId, {_BUCKET} AS TimeUnix, p.lower, p.upper, p.n
              FROM otel_bucket_partials(metric, period, until := until, lookback := lookback,
                                        source := source, step := step) p
              JOIN otel_series_groups(metric, group_by := group_by, match := match) g
                  USING (series_id)
              WHERE p.n IS NOT NULL AND {_CHECK_SOURCE}
              UNION ALL
              SELECT g.GroupId, {_BUCKET} AS TimeUnix, unnest(p.lower), unnest(p.upper),
                     unnest(p.n)
              FROM otel_bucket_rollups(metric, period, until := until, source := source) p
              JOIN otel_series_groups(metric, group_by := group_by, match := match) g
                  USING (series_id)
              WHERE {_CHECK_SOURCE})
        GROUP BY GroupId, TimeUnix, lower, upper
    """,
    "otel_bucket_counts": f"""
        (metric, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        SELECT l.Labels, l.SeriesId, c.TimeUnix, c.lower, c.upper, c.n
        FROM otel_bucket_group_counts(metric, period, step := step, until := until,
                                      group_by := group_by, match := match,
                                      lookback := lookback, source := source) c
        JOIN otel_group_labels(metric, group_by := group_by, match := match) l
            USING (GroupId)
    """,
    "histogram_quantile": f"""
        (q, metric, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        WITH counts AS (
            SELECT GroupId, TimeUnix, lower, upper, n,
                   sum(n) OVER g AS cum,
                   sum(n) OVER (PARTITION BY GroupId, TimeUnix) AS total
            FROM otel_bucket_group_counts(metric, period, step := step, until := until,
                                          group_by := group_by, match := match,
                                          lookback := lookback, source := source)
            WINDOW g AS (PARTITION BY GroupId, TimeUnix ORDER BY upper, lower
                         ROWS UNBOUNDED PRECEDING)
        ), found AS (
            SELECT *, cum - n AS below, q * total AS rank
            FROM counts
            WHERE total > 0 AND cum >= q * total
            QUALIFY row_number() OVER (PARTITION BY GroupId, TimeUnix
                                       ORDER BY upper, lower) = 1
        )
        SELECT l.Labels, f.TimeUnix,
               CASE WHEN q < 0 THEN '-inf'::DOUBLE
                    WHEN q > 1 THEN 'inf'::DOUBLE
                    WHEN isinf(upper) THEN lower
                    WHEN lower IS NULL AND upper <= 0 THEN upper
                    ELSE coalesce(lower, 0) + (upper - coalesce(lower, 0))
                         * coalesce((rank - below) / nullif(n, 0), 0)
               END AS Value,
               l.SeriesId
        FROM found f JOIN otel_group_labels(metric, group_by := group_by, match := match) l
            USING (GroupId)
        ORDER BY TimeUnix
    """,
    "sla_adherence": f"""
        (metric, threshold, {_COMMON_ARGS}, lookback := NULL) AS TABLE
        WITH shares AS (
            SELECT GroupId, TimeUnix,
                   sum(CASE WHEN upper <= threshold THEN n
                            WHEN coalesce(lower, 0) < threshold AND NOT isinf(upper)
                            THEN n * (threshold - coalesce(lower, 0))
                                 / (upper - coalesce(lower, 0))
                            ELSE 0 END) / nullif(sum(n), 0) AS Value,
                   sum(n) AS Total
            FROM otel_bucket_group_counts(metric, period, step := step, until := until,
                                          group_by := group_by, match := match,
                                          lookback := lookback, source := source)
            GROUP BY GroupId, TimeUnix
            HAVING sum(n) > 0
        )
        SELECT l.Labels, v.TimeUnix, v.Value, l.SeriesId, v.Total
        FROM shares v JOIN otel_group_labels(metric, group_by := group_by, match := match) l
            USING (GroupId)
        ORDER BY TimeUnix
    """,
    # avg/min/max/sum/count/last per group and bucket; fill := true adds empty buckets.
    "window_stats": f"""
        (metric, {_COMMON_ARGS}, fill := false) AS TABLE
        WITH grouped AS (
            SELECT g.GroupId, {_BUCKET} AS TimeUnix, sum(p.count) AS Count, sum(p.sum) AS Sum,
                   sum(p.sum) / sum(p.count) AS Avg, min(p.min) AS Min, max(p.max) AS Max,
                   arg_max(p.last, struct_pack(t := p.last_time, s := p.series_id)) AS Last
            FROM otel_number_partials(metric, period, until := until, source := source,
                                      step := step) p
            JOIN otel_series_groups(metric, group_by := group_by, match := match) g
                USING (series_id)
            WHERE {_CHECK_SOURCE}
            GROUP BY g.GroupId, TimeUnix
        ), stats AS (
            SELECT l.Labels, l.SeriesId, v.TimeUnix, v.Count, v.Sum, v.Avg, v.Min, v.Max,
                   v.Last
            FROM grouped v
            JOIN otel_group_labels(metric, group_by := group_by, match := match) l
                USING (GroupId)
        ), grid AS (
            SELECT DISTINCT g.Labels, g.SeriesId, unnest(range({SINCE}, {UNTIL},
                                                              {STEP})) AS TimeUnix
            FROM stats g WHERE fill
        )
        SELECT Labels, TimeUnix, Count, Sum, Avg, Min, Max, Last, SeriesId
        FROM stats WHERE NOT fill
        UNION ALL
        SELECT g.Labels, g.TimeUnix, coalesce(st.Count, 0), st.Sum, st.Avg, st.Min, st.Max,
               st.Last, g.SeriesId
        FROM grid g LEFT JOIN stats st
            ON st.Labels = g.Labels AND st.SeriesId IS NOT DISTINCT FROM g.SeriesId
           AND st.TimeUnix = g.TimeUnix
        ORDER BY TimeUnix
    """,
    # The latest point of each series (gauges and sums) in the period.
    "latest": f"""
        (metric, period, until := NULL, match := NULL) AS TABLE
        SELECT any_value({_SERIES_LABELS}) AS Labels, max(p.time) AS TimeUnix,
               arg_max(p.v, p.time) AS Value,
               s.series_id AS SeriesId
        FROM otel_number_points(metric, {SINCE}, {UNTIL}) p
        JOIN series s USING (series_id)
        WHERE {_MATCH}
        GROUP BY s.series_id
        ORDER BY Labels::VARCHAR
    """,
    # The bucket grid of a range: origin at the range start, one row per step.
    "time_grid": f"""
        (period, step := INTERVAL 1 MINUTE, until := NULL) AS TABLE
        SELECT unnest(range({SINCE}, {UNTIL}, {STEP})) AS TimeUnix
    """,
}


def install(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every helper over the store's point macros (``storage.point_macros``,
    installed when the store opens); dependencies are defined before their users."""
    for name, body in MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
