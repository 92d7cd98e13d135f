"""Aggregations of one step's vector, exactly as Prometheus 2.42 computes them (design §3.5
and its Appendix D, which matched 2.42 to the last bit over selectors).

Groups are keyed by the ``by`` labels, or by all labels but the ``without`` ones and
``__name__``; they come out in order of first appearance.  ``sum`` adds in input order with
no compensation, ``avg`` keeps an incremental mean, ``stddev``/``stdvar`` Welford's sums, as
Go does; ``topk``/``bottomk`` keep the samples' own labels and let NaN lose.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from . import format as fmt
from .values import EvaluationError, Labels, Sample

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_INT64 = 2.0**63


@dataclass
class _Group:
    labels: Labels
    value: float
    mean: float
    count: int = 1
    items: list[Sample] = field(default_factory=list)


def _key(labels: Labels, names: tuple[str, ...], without: bool) -> Labels:
    if without:
        return tuple((k, v) for k, v in labels if k not in names and k != "__name__")
    return tuple((k, v) for k, v in labels if k in names)


def quantile(q: float, values: list[float]) -> float:
    """Prometheus' ``quantile``: linear between the two closest ranks; NaN sorts first."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values, key=lambda x: (not math.isnan(x), x))
    rank = q * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _add(op: str, group: _Group, value: float) -> None:
    if op == "sum":
        group.value += value
    elif op == "avg":
        group.count += 1
        if math.isinf(group.mean):
            if math.isinf(value) and (group.mean > 0) == (value > 0):
                return
            if not math.isinf(value) and not math.isnan(value):
                return
        group.mean += value / group.count - group.mean / group.count
    elif op == "max":
        if group.value < value or math.isnan(group.value):
            group.value = value
    elif op == "min":
        if group.value > value or math.isnan(group.value):
            group.value = value
    elif op in ("count", "count_values"):
        group.count += 1
    elif op in ("stddev", "stdvar"):
        group.count += 1
        delta = value - group.mean
        group.mean += delta / group.count
        group.value += delta * (value - group.mean)


def _go_g(v: float) -> str:
    """Go's ``%v`` of a float64 at least 1e6 in size (or not finite): ``1e+30``."""
    if math.isnan(v) or math.isinf(v):
        return fmt.sample_value(v)
    digits = repr(abs(v)).split("e")[0].replace(".", "").lstrip("0").rstrip("0") or "0"
    exponent = math.floor(math.log10(abs(v)))
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if v < 0 else ''}{mantissa}e+{exponent:02d}"


def _k(param: float) -> int:
    if math.isnan(param) or not -_INT64 <= param < _INT64:
        raise EvaluationError(f"Scalar value {_go_g(param)} overflows int64")
    return int(param)


def aggregate(op: str, vector: list[Sample], grouping: tuple[str, ...], without: bool,
              param: float | str | None) -> list[Sample]:
    """``op`` over one step's ``vector``; ``param`` is topk's k, quantile's q or
    count_values' label name."""
    grouped = bool(grouping) or without
    if op == "count_values":
        assert isinstance(param, str)
        if not _LABEL_NAME.fullmatch(param):
            raise EvaluationError(f'invalid label name "{param}"')
        vector = [Sample(tuple(sorted({**dict(s.labels), param: fmt.fixed(s.value)}.items())),
                         s.value) for s in vector]
        if not without:
            grouping, grouped = (*grouping, param), True
    groups: dict[Labels, _Group] = {}
    for sample in vector:
        key = _key(sample.labels, grouping, without) if grouped else ()
        group = groups.get(key)
        if group is None:
            start = 0.0 if op in ("stddev", "stdvar") else 1.0 if op == "group" else sample.value
            groups[key] = _Group(key, start, sample.value, items=[sample])
            continue
        group.items.append(sample)
        _add(op, group, sample.value)
    return [out for group in groups.values() for out in _result(op, group, param)]


def _result(op: str, group: _Group, param: float | str | None) -> list[Sample]:
    if op == "avg":
        return [Sample(group.labels, group.mean)]
    if op in ("count", "count_values"):
        return [Sample(group.labels, float(group.count))]
    if op == "stdvar":
        return [Sample(group.labels, group.value / group.count)]
    if op == "stddev":
        return [Sample(group.labels, math.sqrt(group.value / group.count))]
    if op in ("topk", "bottomk"):
        assert isinstance(param, float)
        k = _k(param)
        if k < 1:
            return []
        if op == "topk":
            ordered = sorted(group.items, key=lambda s: (not math.isnan(s.value), s.value),
                             reverse=True)
        else:
            ordered = sorted(group.items, key=lambda s: (math.isnan(s.value), s.value))
        return ordered[:k]
    if op == "quantile":
        assert isinstance(param, float)
        return [Sample(group.labels, quantile(param, [s.value for s in group.items]))]
    return [Sample(group.labels, group.value)]


__all__ = ["aggregate", "quantile"]
