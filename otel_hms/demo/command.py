"""``otel-hms demo`` (its flags and run) and what ``otel-hms serve --demo`` adds to serve."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import Any

from otel_hms.common.durations import parse_seconds
from otel_hms.config import ConfigError, parse_address
from otel_hms.settings import Settings

from . import demo_settings, rules_file, start_in_process
from .driver import DemoOptions, run


def add_parser(sub: Any) -> None:
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


def add_serve_flag(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--demo", action="store_true",
                       help="also load the demo's alert rules and run `otel-hms demo` against "
                       "this server (use a scratch --db)")


def _seconds(text: str, flag: str) -> float:
    try:
        value: float = parse_seconds(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(f"{flag}: expected a duration like 90s or 5m (got {text!r})")
    return value


def run_command(args: argparse.Namespace) -> int:
    if args.rules_path:
        print(rules_file())
        return 0
    endpoint = args.endpoint or os.environ.get("OTEL_HMS_OTLP_GRPC") or "127.0.0.1:4317"
    api = args.api or os.environ.get("OTEL_HMS_API") or "127.0.0.1:4320"
    parse_address(endpoint, "--endpoint")
    parse_address(api, "--api")
    options = DemoOptions(
        endpoint=endpoint, api=api, interval=_seconds(args.interval, "--interval"),
        duration=None if args.duration is None else _seconds(args.duration, "--duration"),
        token=args.token or os.environ.get("OTEL_HMS_AUTH_TOKEN"))
    run(options, say=lambda line: print(line, flush=True))
    return 0


def for_serve(settings: Settings
              ) -> tuple[Settings, Callable[[Any], Callable[[], None]]]:
    """The settings of ``serve --demo`` and the companion that runs the story in it."""
    if settings.tls_cert:
        raise ConfigError("--demo: the demo sends plain OTLP to this server; leave out "
                          "--tls-cert/--tls-key")
    say = logging.getLogger("otel_hms.demo").info
    return demo_settings(settings), lambda server: start_in_process(server.settings, say)
