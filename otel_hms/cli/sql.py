"""``otel-hms sql``: ask the running server's read-only SQL endpoint and print the answer.

DuckDB lets one process hold the store file, so queries go through the server.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from otel_hms.cli.api_client import ApiRefused, ApiUnreachable, post_json


class SqlClientError(Exception):
    pass


def query(api: str, sql: str, token: str | None = None, timeout: float = 120.0
          ) -> dict[str, Any]:
    """Run ``sql`` on the server at ``api``: ``{columns, types, rows, truncated}``."""
    try:
        return post_json(api, "/api/v1/sql", {"sql": sql}, token, timeout)
    except ApiRefused as exc:
        raise SqlClientError(f"query refused: {exc}") from None
    except ApiUnreachable as exc:
        raise SqlClientError(f"--api: no otel-hms server answers at {api} ({exc}); start "
                             "`otel-hms serve` or pass --api HOST:PORT") from None


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(result: dict[str, Any], fmt: str) -> str:
    columns: list[str] = result["columns"]
    rows: list[list[Any]] = result["rows"]
    if fmt == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], ensure_ascii=False,
                          indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else _cell(v) for v in row])
        return out.getvalue().rstrip("\n")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    def fmt_row(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"
    lines = [line, fmt_row(columns), line, *[fmt_row(r) for r in cells], line]
    footer = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if result.get("truncated"):
        footer += " (truncated by the server's sql_row_limit)"
    return "\n".join(lines + [footer])
