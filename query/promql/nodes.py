"""The PromQL syntax tree the engine reads: frozen dataclasses of our own.

``parse`` converts promql-parser's objects into these once, so nothing else touches the
binding (its objects are rebuilt on every attribute read, cannot be pickled, and some panic
when read, §2.2 of docs/design/prometheus.md).  Times and durations are int milliseconds, as
in Prometheus; ``type`` is the value type Prometheus' parser gives the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ValueType = Literal["scalar", "vector", "matrix", "string"]
MatchOp = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True)
class At:
    """``@ <time>`` (``time_ms``), ``@ start()`` or ``@ end()``."""

    kind: Literal["at", "start", "end"]
    time_ms: int | None = None


@dataclass(frozen=True)
class NumberLiteral:
    value: float

    @property
    def type(self) -> ValueType:
        return "scalar"


@dataclass(frozen=True)
class StringLiteral:
    value: str

    @property
    def type(self) -> ValueType:
        return "string"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: MatchOp
    value: str


@dataclass(frozen=True)
class VectorSelector:
    name: str | None
    matchers: tuple[Matcher, ...]  # every matcher, the one on __name__ included
    offset_ms: int = 0
    at: At | None = None

    @property
    def type(self) -> ValueType:
        return "vector"


@dataclass(frozen=True)
class MatrixSelector:
    selector: VectorSelector
    range_ms: int

    @property
    def type(self) -> ValueType:
        return "matrix"


@dataclass(frozen=True)
class SubqueryExpr:
    expr: Expr
    range_ms: int
    step_ms: int | None  # None: the default evaluation interval
    offset_ms: int = 0
    at: At | None = None

    @property
    def type(self) -> ValueType:
        return "matrix"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    return_type: ValueType

    @property
    def type(self) -> ValueType:
        return self.return_type


@dataclass(frozen=True)
class AggregateExpr:
    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False

    @property
    def type(self) -> ValueType:
        return "vector"


@dataclass(frozen=True)
class VectorMatching:
    """How ``a op b`` pairs series: ``on``/``ignoring`` labels, ``group_left``/``right``."""

    card: Literal["one-to-one", "many-to-one", "one-to-many", "many-to-many"]
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class BinaryExpr:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None  # None unless both sides are vectors
    # kept, not derived: a chain of 1,000 ``+`` would otherwise recurse 1,000 deep to get it
    type: ValueType = field(init=False)

    def __post_init__(self) -> None:
        both_scalar = self.lhs.type == "scalar" and self.rhs.type == "scalar"
        object.__setattr__(self, "type", "scalar" if both_scalar else "vector")


@dataclass(frozen=True)
class UnaryExpr:
    """Unary minus (the parser drops unary plus)."""

    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass(frozen=True)
class ParenExpr:
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


Expr = (NumberLiteral | StringLiteral | VectorSelector | MatrixSelector | SubqueryExpr | Call
        | AggregateExpr | BinaryExpr | UnaryExpr | ParenExpr)

__all__ = ["AggregateExpr", "At", "BinaryExpr", "Call", "Expr", "MatchOp", "Matcher",
           "MatrixSelector", "NumberLiteral", "ParenExpr", "StringLiteral", "SubqueryExpr",
           "UnaryExpr", "ValueType", "VectorMatching", "VectorSelector"]
