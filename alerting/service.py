"""The alerting loop inside ``otel-hms serve``: one thread per group, on its slots.

Each group is evaluated at multiples of its interval; when an evaluation overruns, the missed
slots are skipped and counted, never queued.  Rules in a group run in order; after each rule
its instances are saved (``state.StateStore``) and its notices handed to the dispatcher,
which never blocks.  After the group, the built-in ``RuleEvaluationFailed`` alert is
evaluated with one instance per failing rule, so a broken rule is never silent.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from otel_hms.storage.alert_state import AlertState
from otel_hms.storage.connection import Cursors
from otel_hms.storage.slo_definitions import SloDefinitions

from .errors import RuleFileError
from .evaluator import DEFAULT_RESEND_DELAY, Instance, Notice, Query, Sample, Step, step
from .notifiers import Batch, build
from .notifiers.dispatcher import Dispatcher
from .posted_slos import api_rule_set, validate_posted
from .query import SqlQuery
from .rule_files import load_rules, merge
from .rules import Group, Rule, RuleSet
from .slo import slo_status
from .state import StateStore

log = logging.getLogger("otel_hms.alerting")
BUILTIN = "RuleEvaluationFailed"


@dataclass
class RuleHealth:
    health: str = "unknown"  # ok | nodata | error | unknown (not evaluated yet)
    last_error: str | None = None
    last_evaluation: float | None = None
    evaluation_seconds: float = 0.0


@dataclass
class GroupHealth:
    last_evaluation: float | None = None
    evaluation_seconds: float = 0.0
    missed_iterations: int = 0
    evaluations: int = 0


def builtin_rule(group: Group) -> Rule:
    """The ``RuleEvaluationFailed`` alert of ``group``: one instance per failing rule."""
    notify = tuple(dict.fromkeys(n for r in group.rules for n in r.notify))
    return Rule(alert=BUILTIN, group=group.name, sql="", interval=group.interval,
                labels={"severity": "warning"}, notify=notify, source=group.source,
                annotations={"summary": "rule {{ labels.rule }} in group {{ rule.group }} "
                                        "cannot be evaluated"})


def next_slot(evaluated: float, current: float, interval: float) -> tuple[float, int]:
    """The next slot after an evaluation at ``evaluated``, now that it is ``current``.

    Slots are multiples of ``interval``.  Slots that have fully passed while evaluating are
    skipped and counted; a slot that started less than one interval ago is still run (late).
    """
    slot = (math.floor(evaluated / interval) + 1) * interval
    if current < slot + interval:
        return slot, 0
    missed = math.floor((current - slot) / interval)
    return slot + missed * interval, missed


def _unchanged(a: dict[str, Instance], b: dict[str, Instance]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(replace(a[k], last_evaluated_at=None) == replace(b[k], last_evaluated_at=None)
               for k in a)


class Alerting:
    """Rules, their state and their notifiers, for the life of the server."""

    def __init__(self, con: Cursors, files: Sequence[str], timeout: float,
                 row_limit: int, external_url: str,
                 resend_delay: float = DEFAULT_RESEND_DELAY,
                 clock: Callable[[], float] = time.time) -> None:
        self.files = list(files)
        self.query: Query = SqlQuery(con, timeout, row_limit)
        self.replay_query: Query = SqlQuery(con, timeout, row_limit, replaying=True)
        self.con, self.timeout = con, timeout
        self.external_url = external_url
        self.resend_delay = resend_delay
        self.clock = clock
        self.state = StateStore(AlertState(con))
        self.posted_slos = SloDefinitions(con)
        self.rules = self._load_at_start()
        self.instances: dict[str, dict[str, Instance]] = self.state.load()
        self.rule_health: dict[str, RuleHealth] = {}
        self.group_health: dict[str, GroupHealth] = {}
        self._lock = threading.Lock()
        self._runners: list[tuple[threading.Thread, threading.Event]] = []
        self.dispatcher = Dispatcher({})
        self.last_reload: dict[str, Any] = {"ok": True, "error": None, "at": None}

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._apply(self.rules)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop_runners(timeout)
            self.dispatcher.stop(timeout)

    def reload(self) -> tuple[bool, str]:
        """Load every file again; apply only if all are valid.  Returns (ok, message)."""
        with self._lock:
            try:
                rules = self._load()
            except Exception as exc:
                message = str(exc)
                self.last_reload = {"ok": False, "error": message, "at": self.clock()}
                log.error("rules reload failed, keeping the previous rules: %s", message)
                return False, message
            self._stop_runners(30.0)
            # Recorded before the rules are swapped in (``status`` reads the rules first, this
            # record last), so whoever sees the new rules also sees this reload.
            self.last_reload = {"ok": True, "error": None, "at": self.clock()}
            self._apply(rules)
            message = f"loaded {len(rules.rules())} rules in {len(rules.groups)} groups"
            log.info("rules reloaded: %s", message)
            return True, message

    def _load(self, slos: list[dict[str, Any]] | None = None) -> RuleSet:
        """Every rules file, plus the SLOs posted over HTTP (``slos`` overrides them)."""
        posted = api_rule_set(self.posted_slos.all() if slos is None else slos)
        return merge([load_rules(self.files), posted])

    def _load_at_start(self) -> RuleSet:
        """Rules files must be valid (else start-up fails); posted SLOs that no longer fit
        them (say, a notifier they name was removed) are skipped, so the server starts and
        they can be fixed or deleted over HTTP."""
        try:
            return self._load()
        except RuleFileError:
            rules = self._load([])  # a bad rules file raises here, stopping start-up
        for definition in self.posted_slos.all():
            try:
                rules = merge([rules, api_rule_set([definition])])
            except RuleFileError as exc:
                log.error("SLO %r posted over HTTP is not loaded: %s", definition.get("name"),
                          exc)
        return rules

    def put_slo(self, definition: Any) -> str:
        """Add or replace an SLO posted over HTTP; raises ``RuleFileError`` if invalid."""
        with self._lock:
            name = validate_posted(definition)
            others = [d for d in self.posted_slos.all() if d.get("name") != name]
            rules = self._load([*others, definition])
            self.posted_slos.put(name, definition)
            self._stop_runners(30.0)
            self._apply(rules)
            return name

    def delete_slo(self, name: str) -> bool:
        """Remove an SLO posted over HTTP; False if there is none by that name."""
        with self._lock:
            remaining = [d for d in self.posted_slos.all() if d.get("name") != name]
            if not self.posted_slos.delete(name):
                return False
            rules = self._load(remaining)
            self._stop_runners(30.0)
            self._apply(rules)
            return True

    def _apply(self, rules: RuleSet) -> None:
        """Start evaluating ``rules``; state of rules no longer loaded is dropped."""
        self.rules = rules
        keys = {r.key for r in rules.rules()} | {f"{g.name}/{BUILTIN}" for g in rules.groups}
        self.state.forget_except(keys)
        self.instances = {k: v for k, v in self.instances.items() if k in keys}
        self.dispatcher = self.dispatcher.replaced({
            name: (n.type, dict(n.options)) for name, n in rules.notifiers.items()}, build)
        for group in rules.groups:
            stopping = threading.Event()
            thread = threading.Thread(target=self._run_group, args=(group, stopping),
                                      name=f"rules-{group.name}", daemon=True)
            self._runners.append((thread, stopping))
            thread.start()

    def _stop_runners(self, timeout: float) -> None:
        for _, stopping in self._runners:
            stopping.set()
        deadline = time.monotonic() + timeout
        for thread, _ in self._runners:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._runners = []

    # -- evaluation ---------------------------------------------------------------------

    def _run_group(self, group: Group, stopping: threading.Event) -> None:
        health = self.group_health.setdefault(group.name, GroupHealth())
        now = self.clock()
        while not stopping.is_set():
            started = time.monotonic()
            self.evaluate_group(group, now)
            health.evaluation_seconds = time.monotonic() - started
            health.last_evaluation = now
            health.evaluations += 1
            slot, missed = next_slot(now, self.clock(), group.interval)
            if missed:
                health.missed_iterations += missed
                log.warning("group %s: evaluation took %.1f s; skipped %d slot(s)",
                            group.name, health.evaluation_seconds, missed)
            if stopping.wait(max(0.0, slot - self.clock())):
                return
            now = slot

    def evaluate_group(self, group: Group, now: float) -> None:
        failures: list[Sample] = []
        for rule in group.rules:
            started = time.monotonic()
            try:
                result = self._evaluate(rule, now, self.query)
            except Exception as exc:  # keep evaluating the group whatever one rule does
                log.exception("rule %s: evaluation failed", rule.key)
                result = Step({}, (), (), "error", f"{type(exc).__name__}: {exc}")
            self.rule_health[rule.key] = RuleHealth(
                result.health, result.error, now, time.monotonic() - started)
            if result.health == "error":
                failures.append(Sample({**rule.labels, "rule": rule.alert}, None, True,
                                       {"error": result.error or ""}))
        builtin = builtin_rule(group)
        try:
            self._evaluate(builtin, now, lambda r, t: failures)
        except Exception:
            log.exception("group %s: %s could not be recorded", group.name, BUILTIN)

    def _evaluate(self, rule: Rule, now: float, query: Query) -> Step:
        previous = self.instances.get(rule.key, {})
        result = step(rule, now, query, previous, self.resend_delay)
        if result.transitions or not _unchanged(previous, result.instances):
            self.state.save(rule.group, rule.alert, result.instances.values(),
                            result.transitions)
        self.instances[rule.key] = result.instances
        if result.notices:
            self._dispatch(rule, now, result.notices)
        return result

    def _dispatch(self, rule: Rule, now: float, notices: Sequence[Notice]) -> None:
        by_notifier: dict[str, list[Notice]] = {}
        for n in notices:
            for name in self.rules.notifiers_for(rule.notify, n.instance.labels):
                by_notifier.setdefault(name, []).append(n)
        for name, group_notices in by_notifier.items():
            self.dispatcher.submit([name], Batch(name, rule.group, rule.alert,
                                                 tuple(group_notices), now, rule.interval,
                                                 self.external_url))

    def slo_statuses(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [slo_status(s, self.con, self.timeout, now) for s in self.rules.slos]

    # -- views for the API --------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
        out = []
        for key, instances in sorted(self.instances.items()):
            group, _, name = key.partition("/")
            for i in instances.values():
                out.append({"group": group, "alertname": name, "fingerprint": i.fingerprint,
                            "state": i.state, "labels": dict(i.labels),
                            "annotations": dict(i.annotations), "value": i.value,
                            "activeAt": i.active_at, "firedAt": i.fired_at,
                            "resolvedAt": i.resolved_at, "keepFiringSince": i.keep_firing_since,
                            "lastSentAt": i.last_sent_at})
        return out

    def status(self) -> dict[str, Any]:
        groups = []
        for g in self.rules.groups:
            gh = self.group_health.get(g.name, GroupHealth())
            rules = []
            for r in g.rules:
                h = self.rule_health.get(r.key, RuleHealth())
                states = [i.state for i in self.instances.get(r.key, {}).values()]
                rules.append({
                    "name": r.alert, "health": h.health, "lastError": h.last_error,
                    "lastEvaluation": h.last_evaluation,
                    "evaluationSeconds": h.evaluation_seconds, "sql": r.sql,
                    "condition": r.condition, "for": r.for_seconds,
                    "keepFiringFor": r.keep_firing_for, "labels": dict(r.labels),
                    "annotations": dict(r.annotations), "notify": list(r.notify),
                    "onNoData": r.on_no_data, "onError": r.on_error,
                    "alerts": {s: states.count(s) for s in ("pending", "firing", "inactive")},
                })
            groups.append({"name": g.name, "file": g.source, "interval": g.interval,
                           "lastEvaluation": gh.last_evaluation,
                           "evaluationSeconds": gh.evaluation_seconds,
                           "evaluations": gh.evaluations,
                           "missedIterations": gh.missed_iterations, "rules": rules})
        return {"files": self.files, "groups": groups, "notifiers": self.dispatcher.stats(),
                "lastReload": self.last_reload}
