"""The ``otel-hms`` command.  Errors print ``Error: …`` on one line and exit 1."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .alerting import cli as rules_cli
from .config import ConfigError, resolve
from .settings import SETTINGS


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
                           help=f"{s.help} (default {s.default or 'none'}; env {s.env})")
    serve.add_argument("--demo", action="store_true",
                       help="also load the demo's alert rules and run `otel-hms demo` against "
                       "this server (use a scratch --db)")

    sql = sub.add_parser("sql", help="run a read-only SQL query on a running server")
    sql.add_argument("query", help="one SELECT statement")
    sql.add_argument("--api", default=None, help="server's API address HOST:PORT "
                     "(default from OTEL_HMS_API or 127.0.0.1:4320)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument("--token", default=None, help="bearer token (default OTEL_HMS_AUTH_TOKEN)")
    rules_cli.add_parser(sub)

    demo = sub.add_parser("demo", help="send the demo's metrics to a running server and "
                          "report its alerts")
    demo.add_argument("--endpoint", default=None, help="OTLP/gRPC address HOST:PORT "
                      "(default from OTEL_HMS_OTLP_GRPC or 127.0.0.1:4317)")
    demo.add_argument("--api", default=None, help="server's API address HOST:PORT, to read "
                      "alerts (default from OTEL_HMS_API or 127.0.0.1:4320)")
    demo.add_argument("--duration", default=None, help="stop after this long, e.g. 90s or "
                      "5m (default: until Ctrl-C)")
    demo.add_argument("--interval", default="2s", help="export interval (default 2s)")
    demo.add_argument("--token", default=None, help="bearer token (default OTEL_HMS_AUTH_TOKEN)")
    demo.add_argument("--rules-path", action="store_true",
                      help="print the path of the demo's rules file and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "rules":
            return int(rules_cli.run(args))
        if args.command == "demo":
            return _demo(args)
        return _sql(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every error a user can cause ends here, as one line
        from .errors import user_message
        message = user_message(exc)
        if message is None:
            raise
        print(f"Error: {message}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    flags = {s.name: getattr(args, s.name) for s in SETTINGS}
    settings = resolve(flags, args.config)
    logging.basicConfig(level=settings["log_level"].upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.demo:
        return serve(settings)
    from . import demo

    if settings["tls_cert"]:
        raise ConfigError("--demo: the demo sends plain OTLP to this server; leave out "
                          "--tls-cert/--tls-key")
    demo_log = logging.getLogger("otel_hms.demo")
    return serve(demo.demo_settings(settings),
                 lambda server: demo.start_in_process(server.settings, demo_log.info))


def _demo(args: argparse.Namespace) -> int:
    import os

    from .alerting.durations import parse_duration
    from .config import parse_address
    from .demo import DemoOptions, rules_file, run

    if args.rules_path:
        print(rules_file())
        return 0
    def seconds(text: str, flag: str) -> float:
        try:
            value: float = parse_duration(text)
        except ValueError:
            value = 0.0
        if value <= 0:
            raise ConfigError(f"{flag}: expected a duration like 90s or 5m (got {text!r})")
        return value

    endpoint = args.endpoint or os.environ.get("OTEL_HMS_OTLP_GRPC") or "127.0.0.1:4317"
    api = args.api or os.environ.get("OTEL_HMS_API") or "127.0.0.1:4320"
    parse_address(endpoint, "--endpoint")
    parse_address(api, "--api")
    options = DemoOptions(
        endpoint=endpoint, api=api, interval=seconds(args.interval, "--interval"),
        duration=None if args.duration is None else seconds(args.duration, "--duration"),
        token=args.token or os.environ.get("OTEL_HMS_AUTH_TOKEN"))
    run(options, say=lambda line: print(line, flush=True))
    return 0


def _sql(args: argparse.Namespace) -> int:
    import os

    from .sql_client import query, render

    api = args.api or os.environ.get("OTEL_HMS_API") or "127.0.0.1:4320"
    token = args.token or os.environ.get("OTEL_HMS_AUTH_TOKEN")
    print(render(query(api, args.query, token), args.format))
    return 0


__all__ = ["main", "ConfigError"]
