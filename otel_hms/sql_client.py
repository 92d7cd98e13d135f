"""``otel-hms sql``: ask the running server's read-only SQL endpoint and print the answer.

DuckDB lets one process hold the store file, so queries go through the server.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from typing import Any


class SqlClientError(Exception):
    pass


def query(api: str, sql: str, token: str | None = None, timeout: float = 120.0
          ) -> dict[str, Any]:
    url = api if api.startswith(("http://", "https://")) else f"http://{api}"
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/sql", data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result: dict[str, Any] = json.load(response)
            return result
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise SqlClientError(f"query refused: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SqlClientError(f"--api: no otel-hms server answers at {api} ({reason}); start "
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
