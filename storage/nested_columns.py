"""The ClickHouse exporter's Nested columns as DuckDB list columns of the same names.

In the exporter's tables ``Exemplars`` and ``ValueAtQuantiles`` are ``Nested``: ClickHouse
keeps one array per field and SQL reads them as ``Exemplars.TraceId``.  DuckDB has no Nested
type, so the ``otel_metrics_*`` views carry both forms: the list of structs (``Exemplars``)
and one list column per field, named with the dot (``"Exemplars.TraceId"``, quoted in
DuckDB).  Each holds what the exporter writes: ids are ``''`` when unset (ClickHouse strings
are never NULL) and ``FilteredAttributes`` are string maps rendered as ``Attributes`` are.
"""

from __future__ import annotations

import duckdb

# Go's encoding/json form of a float64 (receiver/anyvalue.go_float), from DuckDB's shortest
# round-trip text: positional from 1e-6 up to 1e21, else d.ddde±N.  DuckDB switches to an
# exponent at other magnitudes (below 1e-4, from 1e16), so those in between are rewritten.
_GO_FLOAT = r"""
    (x) AS CASE
        WHEN isnan(x) THEN 'NaN'
        WHEN isinf(x) THEN CASE WHEN x > 0 THEN 'Infinity' ELSE '-Infinity' END
        WHEN x = 0 THEN CASE WHEN signbit(x) THEN '-0' ELSE '0' END
        WHEN NOT contains(x::VARCHAR, 'e') THEN regexp_replace(x::VARCHAR, '\.0$', '')
        WHEN abs(x) < 1e-6 OR abs(x) >= 1e21 THEN regexp_replace(x::VARCHAR, 'e([+-])0*', 'e\1')
        ELSE otel_go_positional(CASE WHEN x < 0 THEN '-' ELSE '' END,
            replace(split_part(ltrim(x::VARCHAR, '-'), 'e', 1), '.', ''),
            split_part(x::VARCHAR, 'e', 2)::INTEGER)
    END
"""
# sign, significant digits and decimal exponent of d.ddd × 10^p to positional text.
_GO_POSITIONAL = """
    (sign, digits, p) AS sign || CASE
        WHEN p < 0 THEN '0.' || repeat('0', -p - 1) || digits
        WHEN length(digits) <= p + 1 THEN digits || repeat('0', p + 1 - length(digits))
        ELSE digits[1:p + 1] || '.' || digits[p + 2:]
    END
"""
# One typed attribute value (OTLP/JSON, as the store keeps it) as its string form.  Array and
# map values keep their OTLP/JSON text: DuckDB macros cannot recurse into them.
_VALUE_TEXT = """
    (v) AS CASE
        WHEN json_exists(v, '$.stringValue') THEN v->>'$.stringValue'
        WHEN json_exists(v, '$.boolValue') THEN v->>'$.boolValue'
        WHEN json_exists(v, '$.intValue') THEN v->>'$.intValue'
        WHEN json_exists(v, '$.bytesValue') THEN v->>'$.bytesValue'
        WHEN json_type(v, '$.doubleValue') = 'VARCHAR' THEN v->>'$.doubleValue'
        WHEN json_exists(v, '$.doubleValue') THEN otel_go_float((v->'$.doubleValue')::DOUBLE)
        WHEN v::VARCHAR = '{}' THEN ''
        ELSE v::VARCHAR
    END
"""
# A typed attribute set ({"key": {"intValue": 5}, ...}) as MAP(VARCHAR, VARCHAR).
_ATTRIBUTE_TEXT = """
    (typed) AS map_from_entries(list_transform(
        map_entries(json_transform(coalesce(typed, '{}'), '"MAP(VARCHAR, JSON)"')),
        lambda e: {'key': e.key, 'value': otel_attribute_value_text(e.value)}))
"""

MACROS: dict[str, str] = {
    "otel_go_positional": _GO_POSITIONAL,
    "otel_go_float": _GO_FLOAT,
    "otel_attribute_value_text": _VALUE_TEXT,
    "otel_attribute_text": _ATTRIBUTE_TEXT,
}

# The exporter's Exemplars Nested fields, from ``p.exemplars`` of a point table.
EXEMPLARS = """
    list_transform(p.exemplars, lambda e: otel_attribute_text(e.filtered_attributes))
        AS "Exemplars.FilteredAttributes",
    list_transform(p.exemplars, lambda e: make_timestamptz(e.time_unix_nano // 1000))
        AS "Exemplars.TimeUnix",
    list_transform(p.exemplars, lambda e: coalesce(e.value_int::DOUBLE, e.value))
        AS "Exemplars.Value",
    list_transform(p.exemplars, lambda e: coalesce(e.span_id, '')) AS "Exemplars.SpanId",
    list_transform(p.exemplars, lambda e: coalesce(e.trace_id, '')) AS "Exemplars.TraceId",
"""

# The exporter's ValueAtQuantiles Nested fields, from ``p.quantile_values`` of summaries.
VALUE_AT_QUANTILES = """
    list_transform(p.quantile_values, lambda q: q.quantile) AS "ValueAtQuantiles.Quantile",
    list_transform(p.quantile_values, lambda q: q.value) AS "ValueAtQuantiles.Value",
"""

# Every column of a view but the Nested fields: what a copy of the rows needs (the Parquet
# export), since the fields repeat the lists of structs.
WITHOUT_NESTED_FIELDS = "COLUMNS(lambda c: NOT contains(c, '.'))"


def install(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the macros the Nested columns use; before the views that call them."""
    for name, body in MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
