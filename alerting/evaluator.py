"""The alert state machine as a pure step function: ``step(rule, now, query, previous)``.

Clock and query are passed in, so tests drive it with a stepped clock and compact series
(Prometheus' ``AlertingRule.Eval`` and ``promqltest``).  Semantics follow Prometheus:

- an instance (one result row, identified by its labels) is *pending* from the first
  evaluation it is active, *firing* once it has been active for ``for`` (at once when ``for``
  is 0); a pending instance that is absent is dropped;
- a firing instance that is absent is *resolved* (state ``inactive``), unless
  ``keep_firing_for`` holds it firing that much longer; resolved instances are kept, and
  re-sent, for ``RESOLVED_RETENTION`` so a receiver that missed the resolution still learns it;
- no rows at all, and query errors, are handled as the rule's ``on_no_data`` / ``on_error``
  say (see ``_active_set``); both are reported in ``Step.health`` so the built-in
  ``RuleEvaluationFailed`` alert can fire.

Notices say what to deliver: new firing, resolved, and re-sends of firing/resolved instances
every ``resend_delay`` (what keeps an Alertmanager's copy from expiring).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .rules import Rule
from .templates import render

PENDING, FIRING, INACTIVE = "pending", "firing", "inactive"
RESOLVED_RETENTION = 15 * 60.0
DEFAULT_RESEND_DELAY = 60.0


class QueryFailed(Exception):
    """The rule's query could not produce instances; the message says why."""


@dataclass(frozen=True)
class Sample:
    """One result row: its labels (string columns), its value, whether the condition holds."""

    labels: Mapping[str, str]
    value: float | None = None
    active: bool = True
    annotations: Mapping[str, str] = field(default_factory=dict)


Query = Callable[[Rule, float], Sequence[Sample]]


@dataclass(frozen=True)
class Instance:
    """One alert instance's state; times are Unix seconds."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: str
    value: float | None
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_sent_at: float | None = None
    last_evaluated_at: float | None = None


@dataclass(frozen=True)
class Transition:
    fingerprint: str
    labels: Mapping[str, str]
    from_state: str
    to_state: str
    at: float
    value: float | None


@dataclass(frozen=True)
class Notice:
    """An instance to deliver; ``reason`` is ``firing``, ``resolved`` or ``resend``."""

    instance: Instance
    reason: str


@dataclass(frozen=True)
class Step:
    instances: dict[str, Instance]
    transitions: tuple[Transition, ...]
    notices: tuple[Notice, ...]
    health: str  # ok | nodata | error
    error: str | None = None


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id of a label set (values never take part)."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


def alert_labels(rule: Rule, row_labels: Mapping[str, str]) -> dict[str, str]:
    """Row labels, overridden by the rule's (and group's) labels, plus ``alertname``."""
    return {**row_labels, **rule.labels, "alertname": rule.alert}


def _query(rule: Rule, now: float, query: Query) -> tuple[Sequence[Sample] | None, str | None]:
    try:
        samples = query(rule, now)
    except QueryFailed as exc:
        return None, str(exc)
    seen: dict[str, Mapping[str, str]] = {}
    for s in samples:
        fp = fingerprint(s.labels)
        if fp in seen:
            pairs = ", ".join(f"{k}={v!r}" for k, v in sorted(s.labels.items()))
            return None, f"two rows have the same labels ({pairs or 'no labels'}); add a " \
                         "string column or GROUP BY so each row is one alert"
        seen[fp] = s.labels
    return samples, None


Active = dict[str, tuple[dict[str, str], float | None, Mapping[str, str]]]


def _active_set(rule: Rule, samples: Sequence[Sample] | None, mode: str, error: str | None,
                previous: Mapping[str, Instance]) -> Active | None:
    """Instances active this evaluation, by fingerprint; None keeps every state as it was.

    ``ok``/normal: the rows whose condition holds; ``alerting``: the instances that were
    active stay active (one rule-labelled instance if there were none); ``nodata`` and
    ``error``: one instance labelled ``alertstate`` with that word, others resolve.
    """
    extra = {"error": error} if error else {}
    if mode == "keep_last":
        return None
    if mode in ("ok", "normal"):
        out: Active = {}
        for s in samples or ():
            if s.active:
                labels = alert_labels(rule, s.labels)
                out[fingerprint(labels)] = (labels, s.value, s.annotations)
        return out
    if mode == "alerting":
        kept: Active = {fp: (dict(i.labels), i.value, extra) for fp, i in previous.items()
                        if i.state != INACTIVE}
        if kept:
            return kept
        labels = alert_labels(rule, {})
        return {fingerprint(labels): (labels, None, extra)}
    labels = alert_labels(rule, {"alertstate": mode})
    return {fingerprint(labels): (labels, None, extra)}


def _annotations(rule: Rule, labels: Mapping[str, str], value: float | None,
                 extra: Mapping[str, str]) -> dict[str, str]:
    view = rule.template_view()
    out = {k: render(t, labels, value, view) for k, t in rule.annotations.items()}
    out.update(extra)
    return out


def _advance(rule: Rule, now: float, active: Active, previous: Mapping[str, Instance]
             ) -> tuple[dict[str, Instance], list[Transition]]:
    new: dict[str, Instance] = {}
    moves: list[Transition] = []

    def move(i: Instance, to: str) -> None:
        moves.append(Transition(i.fingerprint, i.labels, i.state, to, now, i.value))

    for fp, (labels, value, extra) in active.items():
        prev = previous.get(fp)
        annotations = _annotations(rule, labels, value, extra)
        if prev is not None and prev.state != INACTIVE:
            new[fp] = replace(prev, value=value, annotations=annotations,
                              keep_firing_since=None, last_evaluated_at=now)
        else:
            fresh = Instance(fp, labels, annotations, INACTIVE, value, active_at=now,
                             last_sent_at=prev.last_sent_at if prev else None)
            move(fresh, PENDING)
            new[fp] = replace(fresh, state=PENDING, last_evaluated_at=now)
    for fp, prev in previous.items():
        if fp in active:
            continue
        if prev.state == FIRING and rule.keep_firing_for > 0:
            since = prev.keep_firing_since if prev.keep_firing_since is not None else now
            if now - since < rule.keep_firing_for:
                new[fp] = replace(prev, keep_firing_since=since, last_evaluated_at=now)
                continue
        if prev.state == PENDING:
            move(prev, INACTIVE)
        elif prev.state == INACTIVE:
            if prev.resolved_at is not None and now - prev.resolved_at <= RESOLVED_RETENTION:
                new[fp] = prev
        else:
            move(prev, INACTIVE)
            new[fp] = replace(prev, state=INACTIVE, resolved_at=now, keep_firing_since=None,
                              last_evaluated_at=now)
    for fp, inst in list(new.items()):
        if inst.state == PENDING and fp in active and now - inst.active_at >= rule.for_seconds:
            move(inst, FIRING)
            new[fp] = replace(inst, state=FIRING, fired_at=now, resolved_at=None)
    return new, moves


def _notices(now: float, instances: dict[str, Instance], resend_delay: float
             ) -> tuple[dict[str, Instance], list[Notice]]:
    """Prometheus' ``needsSending``: new firing, resolved since last sent, or resend due."""
    notices: list[Notice] = []
    out = dict(instances)
    for fp, inst in instances.items():
        if inst.state == PENDING:
            continue
        sent = inst.last_sent_at
        if inst.state == FIRING and (sent is None or inst.fired_at is None or sent < inst.fired_at):
            reason = "firing"
        elif inst.state == INACTIVE and inst.resolved_at is not None and (
                sent is None or sent < inst.resolved_at):
            reason = "resolved"
        elif sent is not None and sent + resend_delay <= now:
            reason = "resend"
        else:
            continue
        out[fp] = replace(inst, last_sent_at=now)
        notices.append(Notice(out[fp], reason))
    return out, notices


def step(rule: Rule, now: float, query: Query, previous: Mapping[str, Instance],
         resend_delay: float = DEFAULT_RESEND_DELAY) -> Step:
    """Evaluate ``rule`` at ``now`` given its instances after the previous evaluation."""
    samples, error = _query(rule, now, query)
    if error is not None:
        health, mode = "error", rule.on_error
    elif not samples:
        health, mode = "nodata", rule.on_no_data
    else:
        health, mode = "ok", "normal"
    active = _active_set(rule, samples, mode, error, previous)
    if active is None:
        instances = {fp: i for fp, i in previous.items()
                     if not (i.state == INACTIVE and i.resolved_at is not None
                             and now - i.resolved_at > RESOLVED_RETENTION)}
        moves: list[Transition] = []
    else:
        instances, moves = _advance(rule, now, active, previous)
    instances, notices = _notices(now, instances, resend_delay)
    return Step(instances, tuple(moves), tuple(notices), health, error)
