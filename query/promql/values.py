"""The values an expression has at one step, and the errors of evaluation."""

from __future__ import annotations

from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float


@dataclass(frozen=True)
class Matrix:
    """A range vector: per series, its samples in the step's window."""

    series: list[tuple[Labels, list[tuple[int, float]]]]


Value = float | str | list[Sample] | Matrix


class EvaluationError(Exception):
    """An error Prometheus reports at evaluation (``execution``, 422)."""


__all__ = ["EvaluationError", "Labels", "Matrix", "Sample", "Value"]
