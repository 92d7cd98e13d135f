"""SLOs: an objective over a good/total SLI, alerted by multiwindow multi-burn-rate rules.

An ``slos:`` entry generates one rule group (``slo:NAME``) with the SRE workbook's three
alerts: burn rate over 14.4 on both 1h and 5m and over 6 on both 6h and 30m page
(``severity: page``); over 1 on both 3d and 6h opens a ticket (``severity: ticket``).  The
burn rate is the window's error ratio over the error budget (1 - objective, kept as a
Decimal so 99.9 % is exactly 0.001).  ``good`` and ``total`` are SELECTs returning one
number over ``window_start`` .. ``window_end`` (replaced by each window's bounds); a
histogram SLI writes them for you from a bucket bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import duckdb

from otel_hms.common.durations import format_duration
from otel_hms.common.yaml_fields import Fields, located
from otel_hms.storage.connection import Cursors

from .errors import RuleFileError
from .rules import Group, Rule, check_select

# (alert suffix, severity, long window, short window, burn-rate factor)
WINDOWS: tuple[tuple[str, str, float, float, Decimal], ...] = (
    ("BurnRatePageFast", "page", 3600.0, 300.0, Decimal("14.4")),
    ("BurnRatePageSlow", "page", 21600.0, 1800.0, Decimal("6")),
    ("BurnRateTicket", "ticket", 259200.0, 21600.0, Decimal("1")),
)
_WINDOW_NAMES = {"window_start", "window_end"}


@dataclass(frozen=True)
class Slo:
    name: str
    objective: Decimal
    period: float
    good_sql: str
    total_sql: str
    interval: float = 60.0
    labels: Mapping[str, str] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    source: str = ""

    @property
    def error_budget(self) -> Decimal:
        return 1 - self.objective


def with_window(sql: str, seconds: float) -> str:
    """``sql`` with ``window_start``/``window_end`` bound to the last ``seconds`` before now."""
    tokens = duckdb.tokenize(sql)
    out, last = [], 0
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        word = sql[start:end].rstrip()
        if kind != duckdb.token_type.identifier or word.lower() not in _WINDOW_NAMES:
            continue
        bound = (f"(now() - to_seconds({float(seconds)!r}))" if word.lower() == "window_start"
                 else "now()")
        out.extend([sql[last:start], bound])
        last = start + len(word)
    out.append(sql[last:])
    return "".join(out)


def burn_sql(slo: Slo, long: float, short: float) -> str:
    """One row: ``value`` = burn rate over ``long``, ``short_burn`` over ``short``."""
    parts = {f"{k}{w}": with_window(sql, secs).strip().rstrip(";")
             for w, secs in (("l", long), ("s", short))
             for k, sql in (("g", slo.good_sql), ("t", slo.total_sql))}
    budget = format(slo.error_budget, "f")
    return (
        f"SELECT (1 - CAST(gl AS DOUBLE) / nullif(tl, 0)) / {budget} AS value,\n"
        f"       (1 - CAST(gs AS DOUBLE) / nullif(ts, 0)) / {budget} AS short_burn\n"
        f"FROM (SELECT ({parts['gl']}) AS gl, ({parts['tl']}) AS tl,\n"
        f"             ({parts['gs']}) AS gs, ({parts['ts']}) AS ts) AS windows")


def slo_group(slo: Slo) -> Group:
    group = f"slo:{slo.name}"
    percent = format((slo.objective * 100).normalize(), "f")
    rules = []
    for suffix, severity, long, short, factor in WINDOWS:
        rules.append(Rule(
            alert=f"{_camel(slo.name)}{suffix}", group=group, sql=burn_sql(slo, long, short),
            condition=f"value > {factor} AND short_burn > {factor}", interval=slo.interval,
            labels={**slo.labels, "slo": slo.name, "severity": severity,
                    "long_window": format_duration(long),
                    "short_window": format_duration(short)},
            annotations={"summary": f"SLO {slo.name} ({percent}%): error budget "
                         f"burning {{{{ '%.1f'|format(value) }}}}x over "
                         f"{format_duration(long)} (and above {factor}x over "
                         f"{format_duration(short)})"},
            notify=slo.notify, source=slo.source))
    return Group(group, slo.interval, tuple(rules), slo.source)


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("-", "_").replace(".", "_")
                   .split("_"))


def _objective(raw: Any, where: str) -> Decimal:
    text = str(raw).strip()
    try:
        value = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not 0 < value < 1:
        raise RuleFileError(f"{where}.objective: must be a ratio like 99.9% or 0.999 "
                            f"(got {raw!r})")
    return value


def histogram_sli(raw: Any, where: str) -> tuple[str, str]:
    """good/total SQL for "observations at or below ``le``" of a histogram metric."""
    if not isinstance(raw, dict) or not isinstance(raw.get("metric"), str) or "le" not in raw:
        raise RuleFileError(f"{where}.histogram: needs metric: NAME and le: BUCKET_BOUND")
    try:
        le = float(raw["le"])
    except (TypeError, ValueError):
        raise RuleFileError(f"{where}.histogram.le: must be a number (got {raw['le']!r})") \
            from None
    metric = raw["metric"].replace("'", "''")
    missing = f"SLO histogram {metric}: {le:g} is not a bucket bound".replace("'", "''")

    def per_series(expr: str) -> str:
        # delta points add up; cumulative ones count what grew within the window
        return (f"SELECT coalesce(sum(x), 0) FROM (SELECT CASE WHEN any_value(t) = 2 THEN "
                f"arg_max(v, TimeUnix) - arg_min(v, TimeUnix) ELSE sum(v) END AS x FROM ("
                f"SELECT SeriesId, TimeUnix, AggregationTemporality AS t, {expr} AS v "
                f"FROM otel_metrics_histogram WHERE MetricName = '{metric}' "
                f"AND TimeUnix > window_start AND TimeUnix <= window_end) GROUP BY SeriesId)")

    good = per_series(f"list_sum(BucketCounts[1:coalesce(list_position(ExplicitBounds, "
                      f"{le!r}), error('{missing}'))])")
    return good, per_series("Count")


def _parse_slo(item: Any, at: str, source: str, problems: list[str]) -> Slo | None:
    """The SLO at ``at``, or None when it has problems (each noted in ``problems``)."""
    before = len(problems)
    f = Fields(item, at, ("name", "objective", "period", "interval", "sli", "labels", "notify"),
               problems)
    slo_name = f.name("name")
    objective = Decimal("0.99")
    if "objective" not in f.raw:
        if f.whole:
            f.fail("objective", "is required, like 99.9%")
    else:
        objective = _located(_objective, f.raw["objective"], at, problems) or objective
    sli = f.raw.get("sli")
    good: Any = None
    total: Any = None
    if not isinstance(sli, dict):
        if f.whole:
            f.fail("sli", "needs good: and total: SELECTs, or histogram: {metric, le}")
    elif "histogram" in sli:
        good, total = _located(histogram_sli, sli["histogram"], f"{at}.sli", problems) \
            or (None, None)
    else:
        good, total = sli.get("good"), sli.get("total")
        for key, sql in (("good", good), ("total", total)):
            problem = ("must be a SELECT returning one number" if not isinstance(sql, str)
                       else check_select(sql) or (
                           None if "window_start" in sql else
                           "must filter on window_start, like TimeUnix > window_start"))
            if problem:
                f.fail(f"sli.{key}", problem)
    interval = f.duration("interval", 60.0)
    period = f.duration("period", 30 * 86400.0)
    if interval <= 0 or period <= 0:
        f.fail("interval", "interval and period must be > 0")
    labels, notify = f.labels("labels"), f.names("notify")
    if len(problems) > before:
        return None
    return Slo(slo_name, objective, period, good, total, interval, labels, notify, source)


def _located(parse: Any, raw: Any, where: str, problems: list[str]) -> Any:
    """``parse(raw, where)``, or None with its ``RuleFileError`` noted in ``problems``."""
    try:
        return parse(raw, where)
    except RuleFileError as exc:
        problems.extend(exc.problems)
        return None


def collect_slos(raw: Any, source: str, problems: list[str]) -> tuple[list[Slo], list[Group]]:
    """The sound SLOs of a ``slos:`` list and their rule groups; problems go to ``problems``."""
    if not isinstance(raw, list):
        problems.append(f"{source}: slos: must be a list of SLOs")
        return [], []
    parsed = [_parse_slo(item, f"{source}: " + located("slo", item, "name", f"slos[{i}]"),
                         source, problems) for i, item in enumerate(raw)]
    slos = [s for s in parsed if s is not None]
    return slos, [slo_group(s) for s in slos]


def parse_slos(raw: Any, source: str) -> tuple[list[Slo], list[Group]]:
    """``collect_slos``, raising ``RuleFileError`` with every problem found."""
    problems: list[str] = []
    found = collect_slos(raw, source, problems)
    if problems:
        raise RuleFileError(*problems)
    return found


def slo_status(slo: Slo, con: Cursors, timeout: float,
               now: float) -> dict[str, Any]:
    """Good, total, SLI and the share of the error budget left over the SLO's period."""
    from otel_hms.query.read_only import QueryError, run_query

    from .query import pin_clock

    sql = pin_clock(f"SELECT ({with_window(slo.good_sql, slo.period).strip().rstrip(';')}) "
                    f"AS good, ({with_window(slo.total_sql, slo.period).strip().rstrip(';')}) "
                    "AS total", now)
    out: dict[str, Any] = {
        "name": slo.name, "objective": str(slo.objective), "period": slo.period,
        "errorBudget": str(slo.error_budget), "group": f"slo:{slo.name}", "source": slo.source,
        "good": None, "total": None, "sli": None, "budgetRemaining": None, "error": None}
    try:
        good, total = run_query(con, sql, timeout, 1).rows[0]
    except QueryError as exc:
        out["error"] = str(exc).splitlines()[0]
        return out
    out["good"], out["total"] = good, total
    if good is None or not total:
        return out
    sli = Decimal(str(good)) / Decimal(str(total))
    out["sli"] = str(sli.normalize())
    out["budgetRemaining"] = str((1 - (1 - sli) / slo.error_budget).normalize())
    return out
