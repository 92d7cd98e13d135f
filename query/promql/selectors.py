"""Series selectors over stored samples, as Prometheus 2.42 reads them (design §3.1, §3.2).

Before a query is evaluated, ``prepare`` fetches once, for every selector in it, the matched
series and the samples the whole query can reach: from the first step minus the offset and
the range (or the 5-minute lookback) to the last step minus the offset.  Then, per step:

- an instant selector takes each series' last sample at or before ``ref = ts - offset``, if
  it is no older than ``ref - 5m`` (the window is closed) and not a stale marker;
- a range selector takes every sample in ``[ref - range, ref]``, both ends included as in
  2.42, stale markers left out.

``@ t`` pins ``ref`` to ``t - offset`` whatever the step; ``@ start()``/``@ end()`` to the
query's start/end.  Store series whose Prometheus labels are equal are one series, their
samples merged in time order (on equal times the higher series id wins).
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field

from . import nodes
from .store import SPLIT_LABEL, PromStore, Samples

LOOKBACK_MS = 300_000
Labels = tuple[tuple[str, str], ...]


class DeltaNotSupported(Exception):
    """The selector matched delta sums, which are not presented as counters yet."""


@dataclass
class SelectorData:
    series: list[tuple[Labels, Samples]]  # sorted by labels


@dataclass(frozen=True)
class QueryTimes:
    start: int
    end: int


class QueryTimeout(Exception):
    """The query ran past its deadline."""


@dataclass
class Data:
    times: QueryTimes
    deadline: float = math.inf  # time.monotonic() by which the query must be done
    selectors: dict[nodes.VectorSelector, SelectorData] = field(default_factory=dict)
    # a subquery's inner value at each inner step, computed once for all outer steps
    inner: dict[tuple[nodes.SubqueryExpr, int], object] = field(default_factory=dict)


def check_deadline(data: Data) -> None:
    if time.monotonic() > data.deadline:
        raise QueryTimeout()


def _reference(selector: nodes.VectorSelector, ts: int, times: QueryTimes) -> int:
    base = ts if selector.at is None else at_time(selector.at, times)
    return base - selector.offset_ms


def at_time(at: nodes.At, times: QueryTimes) -> int:
    """The time an ``@`` pins: ``start()``/``end()`` are the query's."""
    if at.kind == "start":
        return times.start
    if at.kind == "end":
        return times.end
    assert at.time_ms is not None
    return at.time_ms


def _windows(expr: nodes.Expr, lo: int, hi: int, times: QueryTimes
             ) -> list[tuple[nodes.VectorSelector, int, int]]:
    """Every selector of ``expr`` with the times it reads when ``expr`` is evaluated at
    reference times in ``[lo, hi]``: a subquery moves them back by its offset and range, an
    ``@`` pins them."""
    if isinstance(expr, nodes.VectorSelector | nodes.MatrixSelector):
        selector = expr if isinstance(expr, nodes.VectorSelector) else expr.selector
        own = LOOKBACK_MS if isinstance(expr, nodes.VectorSelector) else expr.range_ms
        if selector.at is not None:
            lo = hi = at_time(selector.at, times)
        return [(selector, lo - selector.offset_ms - own, hi - selector.offset_ms)]
    if isinstance(expr, nodes.SubqueryExpr):
        if expr.at is not None:
            lo = hi = at_time(expr.at, times)
        return _windows(expr.expr, lo - expr.offset_ms - expr.range_ms, hi - expr.offset_ms,
                        times)
    children: list[nodes.Expr] = []
    if isinstance(expr, nodes.ParenExpr | nodes.UnaryExpr):
        children = [expr.expr]
    elif isinstance(expr, nodes.BinaryExpr):
        children = [expr.lhs, expr.rhs]
    elif isinstance(expr, nodes.Call):
        children = list(expr.args)
    elif isinstance(expr, nodes.AggregateExpr):
        children = [expr.expr] + ([expr.param] if expr.param is not None else [])
    return [found for child in children for found in _windows(child, lo, hi, times)]


def prepare(expr: nodes.Expr, store: PromStore | None, times: QueryTimes,
            deadline: float = math.inf) -> Data:
    """The samples every selector of ``expr`` needs for steps in ``[start, end]``."""
    data = Data(times, deadline)
    if store is not None:
        store.start_query()
    reach: dict[nodes.VectorSelector, tuple[int, int]] = {}
    for selector, lo, hi in _windows(expr, times.start, times.end, times):
        before, after = reach.get(selector, (lo, hi))
        reach[selector] = (min(before, lo), max(after, hi))
    for selector, (lo, hi) in reach.items():
        assert store is not None, "a selector needs a store"
        store.check_served(selector.matchers)
        matched = store.select(selector.matchers)
        delta = sorted({dict(s.labels)["__name__"] for s in matched if s.delta})
        if delta:
            raise DeltaNotSupported(", ".join(delta))
        samples = store.samples(matched, lo, hi)
        merged: dict[Labels, list[Samples]] = {}
        for s in sorted(matched, key=lambda s: s.series_id):
            split = SPLIT_LABEL.get(s.part)
            for value, got in samples.get((s.series_id, s.part), {}).items():
                if split is None:
                    merged.setdefault(s.labels, []).append(got)
                elif store.split_matches(selector.matchers, split, value):
                    labels = tuple(sorted((*s.labels, (split, value))))
                    merged.setdefault(labels, []).append(got)
        data.selectors[selector] = SelectorData(
            [(labels, _merge(parts)) for labels, parts in sorted(merged.items())])
    return data


def _merge(parts: list[Samples]) -> Samples:
    if len(parts) == 1:
        return parts[0]
    by_time: dict[int, tuple[float, bool]] = {}
    for part in parts:  # in series id order: a later one wins a tie
        for t, v, stale in zip(part.times, part.values, part.stale, strict=True):
            by_time[t] = (v, stale)
    times = sorted(by_time)
    return Samples(times, [by_time[t][0] for t in times], [by_time[t][1] for t in times])


def instant(selector: nodes.VectorSelector, ts: int, data: Data
            ) -> list[tuple[Labels, float, int]]:
    """``(labels, value, sample time)`` of each series present at step ``ts``."""
    ref = _reference(selector, ts, data.times)
    out = []
    for labels, samples in data.selectors[selector].series:
        i = bisect.bisect_right(samples.times, ref) - 1
        if i < 0 or samples.times[i] < ref - LOOKBACK_MS or samples.stale[i]:
            continue
        out.append((labels, samples.values[i], samples.times[i]))
    return out


def window(selector: nodes.VectorSelector, range_ms: int, ts: int, data: Data
           ) -> tuple[int, list[tuple[Labels, list[tuple[int, float]]]]]:
    """The reference time and, per series with samples there, the non-stale samples in
    ``[ref - range, ref]``."""
    ref = _reference(selector, ts, data.times)
    out = []
    for labels, samples in data.selectors[selector].series:
        lo = bisect.bisect_left(samples.times, ref - range_ms)
        hi = bisect.bisect_right(samples.times, ref)
        points = [(samples.times[i], samples.values[i]) for i in range(lo, hi)
                  if not samples.stale[i]]
        if points:
            out.append((labels, points))
    return ref, out


__all__ = ["Data", "DeltaNotSupported", "LOOKBACK_MS", "QueryTimeout", "QueryTimes",
           "check_deadline", "instant", "prepare", "window"]
