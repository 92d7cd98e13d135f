"""Evaluate rules over a span of time with the pure step function: what rule tests and
backtests share.  Groups are stepped on their own intervals, merged in time order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .evaluator import Instance, Query, Step, step
from .rules import Group, Rule


@dataclass(frozen=True)
class Evaluation:
    rule: Rule
    at: float
    step: Step


def replay(groups: Sequence[Group], query: Query, start: float, end: float,
           max_evaluations: int | None = None) -> Iterator[Evaluation]:
    """Every rule evaluation from ``start`` to ``end`` (inclusive), as ``serve`` would do them."""
    state: dict[str, dict[str, Instance]] = {}
    queue = [(start, i) for i in range(len(groups))]
    heapq.heapify(queue)
    count = 0
    while queue:
        at, gi = heapq.heappop(queue)
        if at > end + 1e-9:
            continue
        group = groups[gi]
        for rule in group.rules:
            count += 1
            if max_evaluations is not None and count > max_evaluations:
                raise OverflowError(max_evaluations)
            result = step(rule, at, query, state.get(rule.key, {}))
            state[rule.key] = result.instances
            yield Evaluation(rule, at, result)
        heapq.heappush(queue, (at + group.interval, gi))
