"""``otel-hms rules check|test|backtest``: the rule tools a person runs before deploying."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from otel_hms.alerting.errors import BacktestError, RuleTestFailure
from otel_hms.cli.api_client import ApiRefused, ApiUnreachable, api_address, api_token, post_json


def add_parser(sub: Any) -> None:
    """Add ``rules`` and its subcommands to the ``otel-hms`` argument parser."""
    rules = sub.add_parser("rules", help="check, test and backtest alert rules files")
    cmds = rules.add_subparsers(dest="rules_command", required=True)
    check = cmds.add_parser("check", help="syntax, SQL bound against the schema, templates")
    check.add_argument("files", nargs="+", metavar="FILE")
    test = cmds.add_parser("test", help="run rule unit tests (input series, expected alerts)")
    test.add_argument("files", nargs="+", metavar="FILE")
    back = cmds.add_parser("backtest", help="replay rules over stored history; print the "
                           "transitions they would have made")
    back.add_argument("file", metavar="FILE")
    back.add_argument("--since", default="24h", help="how far back to start (default 24h)")
    back.add_argument("--rule", default=None, help="only this alert rule")
    back.add_argument("--api", default=None, help="running server's API address HOST:PORT "
                      "(default from OTEL_HMS_API or 127.0.0.1:4320)")
    back.add_argument("--token", default=None, help="bearer token (default OTEL_HMS_AUTH_TOKEN)")
    back.add_argument("--db", default=None, help="replay a store file no server holds, "
                      "instead of asking the server")
    back.add_argument("--format", choices=("table", "csv", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    if args.rules_command == "check":
        return _check(args.files)
    if args.rules_command == "test":
        return _test(args.files)
    return _backtest(args)


def _check(files: list[str]) -> int:
    from otel_hms.alerting.check import check_files

    rules, problems = check_files(files)
    for p in problems:
        print(f"Error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"OK: {len(rules.files)} file(s), {len(rules.groups)} group(s), "
          f"{len(rules.rules())} rule(s), {len(rules.notifiers)} notifier(s)")
    return 0


def _test(files: list[str]) -> int:
    from otel_hms.alerting.ruletest import run_file

    total = failed = 0
    for path in files:
        count, results = run_file(path)
        total += count
        for name, failures in results:
            print(("FAIL" if failures else "PASS") + f"  {path}: {name}")
            for f in failures:
                print(f"      {f}")
            failed += bool(failures)
    if failed:
        raise RuleTestFailure(f"{failed} of {total} rule tests failed")
    print(f"OK: {total} rule test(s) passed")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from otel_hms.alerting.backtest import backtest, open_backtest_source, parse_rules_text
    from otel_hms.cli.sql import render
    from otel_hms.common.durations import parse_seconds

    try:
        since = parse_seconds(args.since)
    except ValueError:
        raise BacktestError(f"--since: expected a duration like 24h (got {args.since!r})") \
            from None
    try:
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BacktestError(f"{args.file}: cannot read rules file: {exc.strerror}") from None
    if args.db:
        from otel_hms.alerting.query import SqlQuery

        rules = parse_rules_text(text, args.file)
        con = open_backtest_source(args.db)
        try:
            result = backtest(rules, SqlQuery(con, 60.0, 100_000, replaying=True), since,
                              args.rule)
        finally:
            con.close()
    else:
        result = _post(args, {"rules": text, "file": args.file, "since": since,
                              "rule": args.rule})
    print(render(result, args.format))
    if args.format == "table":
        print(f"{result['evaluations']} evaluations, {result['errors']} failed")
    return 0


def _post(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    api = api_address(args.api)
    try:
        result: dict[str, Any] = post_json(api, "/api/v1/rules/backtest", body,
                                           api_token(args.token), 600)
        return result
    except ApiRefused as exc:
        raise BacktestError(str(exc)) from None
    except ApiUnreachable as exc:
        raise BacktestError(f"--api: no otel-hms server answers at {api} ({exc}); start "
                            "`otel-hms serve`, pass --api HOST:PORT, or --db FILE") from None
