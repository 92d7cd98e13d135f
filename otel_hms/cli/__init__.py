"""The ``otel-hms`` command.  Errors print ``Error: …`` (one line per problem) and exit 1."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from otel_hms.config import ConfigError, resolve
from otel_hms.demo import command as demo_cli
from otel_hms.settings import SETTINGS

from . import export as export_cli
from . import rules as rules_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-hms",
        description="OpenTelemetry metrics in, DuckDB tables out, plain SQL on top.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="receive OTLP metrics and serve the query API")
    serve.add_argument("--config", metavar="FILE", help="YAML file of settings (same names)")
    for s in SETTINGS:
        serve.add_argument(s.flag, dest=s.name, default=None, metavar=s.name.upper(),
                           action="append" if s.multiple else "store",
                           help=f"{s.help} (default {s.default or 'none'}; env {s.env})"
                           .replace("%", "%%"))  # argparse formats help with %
    demo_cli.add_serve_flag(serve)

    sql = sub.add_parser("sql", help="run a read-only SQL query on a running server")
    sql.add_argument("query", help="one SELECT statement")
    sql.add_argument("--api", default=None, help="server's API address HOST:PORT "
                     "(default from OTEL_HMS_API or 127.0.0.1:4320)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument("--token", default=None, help="bearer token (default OTEL_HMS_AUTH_TOKEN)")
    rules_cli.add_parser(sub)
    export_cli.add_parser(sub)
    demo_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "rules":
            return int(rules_cli.run(args))
        if args.command == "export":
            return export_cli.run(args)
        if args.command == "demo":
            return demo_cli.run_command(args)
        return _sql(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every error a user can cause ends here, as one line
        from otel_hms.cli.errors import user_message
        message = user_message(exc)
        if message is None:
            raise
        for line in message.splitlines() or [""]:  # several problems: one line each
            print(f"Error: {line}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from otel_hms.server import serve

    flags = {s.name: getattr(args, s.name) for s in SETTINGS}
    settings = resolve(flags, args.config)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.demo:
        return serve(settings)
    settings, companion = demo_cli.for_serve(settings)
    return serve(settings, companion)


def _sql(args: argparse.Namespace) -> int:
    from otel_hms.cli.api_client import api_address, api_token
    from otel_hms.cli.sql import query, render

    print(render(query(api_address(args.api), args.query, api_token(args.token)), args.format))
    return 0


__all__ = ["main", "ConfigError"]
