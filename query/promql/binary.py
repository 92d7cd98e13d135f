"""Binary operators at one step, exactly as Prometheus 2.42 computes them (design §3.4 and
Appendix D, matched to 2.42 to the last bit): arithmetic with Go's ``math.Mod``,
``math.Pow`` and IEEE division, comparisons with and without ``bool``, the set operators,
and vector matching (``on``/``ignoring``, ``group_left``/``group_right``) with 2.42's errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import nodes
from .values import EvaluationError, Labels, Sample, Value


def _divide(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _modulo(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)  # Go's math.Mod: the sign of the dividend, as C's fmod
    except ValueError:  # fmod(±Inf, y), fmod(x, 0): Go answers NaN
        return math.nan


def _odd_integer(b: float) -> bool:
    return math.isfinite(b) and b.is_integer() and int(b) % 2 == 1


def _power(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except ZeroDivisionError:  # 0 ** negative
        return math.copysign(math.inf, a) if _odd_integer(b) else math.inf
    except ValueError:  # negative ** fraction; Python raises for what Go answers as NaN
        if a == 0:
            return math.copysign(math.inf, a) if _odd_integer(b) else math.inf
        return math.nan
    except OverflowError:
        return -math.inf if a < 0 and _odd_integer(b) else math.inf


ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": _divide, "%": _modulo, "^": _power, "atan2": math.atan2,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}


def drop_name(labels: Labels) -> Labels:
    return tuple((k, v) for k, v in labels if k != "__name__")


def _signature(labels: Labels, matching: nodes.VectorMatching) -> Labels:
    if matching.on:
        return tuple((k, v) for k, v in labels if k in matching.labels)
    return tuple((k, v) for k, v in labels if k not in matching.labels and k != "__name__")


def _scalar_binary(op: str, a: float, b: float) -> float:
    if op in COMPARISON:
        return 1.0 if COMPARISON[op](a, b) else 0.0
    return ARITHMETIC[op](a, b)


def _vector_scalar(op: str, vector: list[Sample], scalar: float, scalar_left: bool,
                   return_bool: bool) -> list[Sample]:
    out = []
    for sample in vector:
        a, b = (scalar, sample.value) if scalar_left else (sample.value, scalar)
        if op in COMPARISON:
            keep, value = COMPARISON[op](a, b), sample.value
        else:
            keep, value = True, ARITHMETIC[op](a, b)
        if return_bool:
            keep, value = True, 1.0 if keep else 0.0
        if keep:
            labels = sample.labels
            if op in ARITHMETIC or return_bool:
                labels = drop_name(labels)
            out.append(Sample(labels, value))
    return out


def _set_operation(op: str, lhs: list[Sample], rhs: list[Sample],
                   matching: nodes.VectorMatching) -> list[Sample]:
    right = {_signature(s.labels, matching) for s in rhs}
    if op == "and":
        return [s for s in lhs if _signature(s.labels, matching) in right]
    if op == "unless":
        return [s for s in lhs if _signature(s.labels, matching) not in right]
    left = {_signature(s.labels, matching) for s in lhs}
    return lhs + [s for s in rhs if _signature(s.labels, matching) not in left]


def _vector_vector(expr: nodes.BinaryExpr, lhs: list[Sample], rhs: list[Sample]) -> list[Sample]:
    matching = expr.matching or nodes.VectorMatching("one-to-one")
    op = expr.op
    if op in ("and", "or", "unless"):
        return _set_operation(op, lhs, rhs, matching)
    if not lhs or not rhs:
        return []
    swap = matching.card == "one-to-many"
    many, one = (rhs, lhs) if swap else (lhs, rhs)
    ones: dict[Labels, Sample] = {}
    for sample in one:
        sig = _signature(sample.labels, matching)
        if sig in ones:
            side = "left" if swap else "right"
            raise EvaluationError(
                f"found duplicate series for the match group {_braces(sig)} on the {side} "
                "hand-side of the operation: [" + ", ".join(
                    _braces(s.labels) for s in (sample, ones[sig])) + "];many-to-many matching "
                "not allowed: matching labels must be unique on one side")
        ones[sig] = sample
    out: list[Sample] = []
    seen: dict[Labels, set[Labels]] = {}
    for sample in many:
        sig = _signature(sample.labels, matching)
        partner = ones.get(sig)
        if partner is None:
            continue
        a, b = (partner.value, sample.value) if swap else (sample.value, partner.value)
        if op in COMPARISON:
            keep, value = COMPARISON[op](a, b), a
        else:
            keep, value = True, ARITHMETIC[op](a, b)
        if expr.return_bool:
            keep, value = True, 1.0 if keep else 0.0
        if not keep:
            continue
        labels = _result_labels(sample.labels, partner.labels, op, expr.return_bool, matching)
        results = seen.setdefault(sig, set())
        if matching.card == "one-to-one" and results:
            raise EvaluationError("multiple matches for labels: many-to-one matching must be "
                                  "explicit (group_left/group_right)")
        if labels in results:
            raise EvaluationError("multiple matches for labels: grouping labels must ensure "
                                  "unique matches")
        results.add(labels)
        out.append(Sample(labels, value))
    return out


def _result_labels(labels: Labels, other: Labels, op: str, return_bool: bool,
                   matching: nodes.VectorMatching) -> Labels:
    result = dict(labels)
    if op in ARITHMETIC or return_bool:
        result.pop("__name__", None)
    if matching.card == "one-to-one":
        result = {k: v for k, v in result.items() if (k in matching.labels) == matching.on}
    from_other = dict(other)
    for name in matching.include:
        if from_other.get(name, ""):
            result[name] = from_other[name]
        else:
            result.pop(name, None)
    return tuple(sorted(result.items()))


def _braces(labels: Labels) -> str:
    """A label set as Prometheus prints it in errors (Go's quoting of the values)."""
    return "{" + ", ".join(f'{k}="{_go_quoted(v)}"' for k, v in labels) + "}"


def _go_quoted(value: str) -> str:
    return (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\t", "\\t").replace("\r", "\\r"))


def binary(expr: nodes.BinaryExpr, lhs: Value, rhs: Value) -> Value:
    if isinstance(lhs, float) and isinstance(rhs, float):
        return _scalar_binary(expr.op, lhs, rhs)
    if isinstance(lhs, list) and isinstance(rhs, float):
        return _vector_scalar(expr.op, lhs, rhs, False, expr.return_bool)
    if isinstance(lhs, float) and isinstance(rhs, list):
        return _vector_scalar(expr.op, rhs, lhs, True, expr.return_bool)
    assert isinstance(lhs, list) and isinstance(rhs, list)
    return _vector_vector(expr, lhs, rhs)


__all__ = ["ARITHMETIC", "COMPARISON", "binary", "drop_name"]
