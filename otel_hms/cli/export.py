"""``otel-hms export``: write Parquet through the running server, or from a store file offline.

DuckDB lets one process hold the store, so while ``otel-hms serve`` runs the export is asked
of it (``POST /api/v1/export``) and it writes the files on its own machine; ``--db FILE``
exports a store file no server holds.  Arguments are checked here first, so a typo is an
error before anything is contacted or written.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from otel_hms.cli.api_client import ApiRefused, ApiUnreachable, api_address, api_token, post_json
from otel_hms.export.spec import KINDS_HELP, TIME_HELP, ExportError, ExportSpec, make_spec

if TYPE_CHECKING:
    import duckdb

def add_parser(sub: Any) -> None:
    """Add ``export`` to the ``otel-hms`` argument parser."""
    p = sub.add_parser("export", help="write stored points as hive-partitioned Parquet "
                       "(kind=…/date=…/hour-HH.parquet) for DuckDB, Spark, pandas …")
    p.add_argument("--to", default="", metavar="DIR", help="dataset directory (created if "
                   "missing); with a server, a directory on the server's machine")
    p.add_argument("--since", default="24h", help=f"range start: {TIME_HELP} (default 24h)")
    p.add_argument("--until", default="now", help="range end, exclusive (default now)")
    p.add_argument("--kind", action="append", default=[], help=f"only this kind: {KINDS_HELP}"
                   " (repeat or comma-separate; default all)")
    p.add_argument("--metric", action="append", default=[], help="only this metric name "
                   "(repeat for several; default all)")
    p.add_argument("--api", default=None, help="running server's API address HOST:PORT "
                   "(default from OTEL_HMS_API or 127.0.0.1:4320)")
    p.add_argument("--token", default=None, help="bearer token (default OTEL_HMS_AUTH_TOKEN)")
    p.add_argument("--db", default=None, metavar="FILE", help="export a store file no server "
                   "holds, instead of asking the server")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="json: every file written, with its row counts")


def run(args: argparse.Namespace) -> int:
    spec = make_spec(args.to, args.since, args.until, args.kind, args.metric)
    if args.db and args.api:
        raise ExportError("give --db FILE (offline) or --api HOST:PORT (a running server), "
                          "not both")
    result = _offline(args.db, spec) if args.db else _post(args, spec)
    print(json.dumps(result, indent=1) if args.format == "json" else summary(result))
    return 0


def _offline(path: str, spec: ExportSpec) -> dict[str, Any]:
    from otel_hms.export.parquet import run_export

    con = open_export_source(path)
    try:
        return run_export(con, spec).as_json()
    finally:
        con.close()


def open_export_source(path: str) -> duckdb.DuckDBPyConnection:
    """The store at ``path``, read-only and without file access, or a one-line reason."""
    from otel_hms.storage.store import StoreError, StoreLocked, open_read_only

    if not os.path.isfile(path):
        raise ExportError(f"--db: no store file {path}; pass the file `otel-hms serve --db` "
                          "writes, or leave out --db to export through the server")
    try:
        con = open_read_only(path)
    except StoreLocked as exc:
        holder = exc.holder
        if holder is not None and not holder.is_serve:
            raise ExportError(f"--db: {path} is held by {holder}; stop it and export "
                              "again") from None
        pid = f" (pid {holder.pid})" if holder else ""
        raise ExportError(f"--db: {path} is held by a running otel-hms serve{pid}; leave "
                          "out --db to export through its API (--api HOST:PORT)") from None
    except StoreError as exc:
        raise ExportError(f"--db: {path} is not a usable DuckDB file: {exc}") from None
    found = con.execute("SELECT count(*) FROM duckdb_views() "
                        "WHERE view_name = 'otel_metrics_gauge'").fetchone()
    if not found or not found[0]:
        con.close()
        raise ExportError(f"--db: {path} is not an otel-hms store (no otel_metrics_* views); "
                          "pass the file `otel-hms serve --db` writes")
    return con


def _post(args: argparse.Namespace, spec: ExportSpec) -> dict[str, Any]:
    api = api_address(args.api)
    # The range goes as the user wrote it: "24h" means back from the server's now.
    body = {"to": spec.to, "since": args.since, "until": args.until, "kinds": list(spec.kinds),
            "metrics": list(spec.metrics)}
    try:
        return post_json(api, "/api/v1/export", body, api_token(args.token), timeout=None)
    except ApiRefused as exc:
        raise ExportError(str(exc)) from None
    except ApiUnreachable as exc:
        raise ExportError(f"--api: no otel-hms server answers at {api} ({exc}); start "
                          "`otel-hms serve`, pass --api HOST:PORT, or --db FILE to export a "
                          "store file no server holds") from None


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary(result: dict[str, Any]) -> str:
    """One line per kind written, then the totals."""
    files = result["files"]
    span = f"{result['since']} to {result['until']}"
    if not files:
        return (f"Nothing to export: the store holds no {' or '.join(result['kinds'])} points "
                f"from {span}; nothing was written to {result['dir']}")
    lines = []
    for kind in result["kinds"]:
        mine = [f for f in files if f["kind"] == kind]
        if mine:
            kept = sum(f["kept"] for f in mine)
            lines.append(f"{kind}: {_n(sum(f['rows'] for f in mine), 'row')} into "
                         f"{_n(len(mine), 'file')}"
                         + (f", {_n(kept, 'row')} of earlier exports kept" if kept else ""))
    lines.append(f"Exported {_n(result['rows'], 'row')} into {_n(len(files), 'file')} under "
                 f"{result['dir']} ({span})")
    return "\n".join(lines)
