"""The alerting errors a user can cause, each with a one-line message saying what to fix.

- ``RuleFileError``: rules files are unreadable or invalid; one line per problem, each naming
  file, group, rule and field (``problems``).
- ``RuleTestFailure``: ``otel-hms rules test`` found alerts that differ from the expected ones.
- ``BacktestError``: a backtest cannot run (no store, unknown rule, bad ``--since``).
"""

from __future__ import annotations


class RuleFileError(Exception):
    """Rules files cannot be used; one line per problem names the file, rule and field."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class RuleTestFailure(Exception):
    """Rule unit tests failed; the message lists every difference."""


class BacktestError(Exception):
    """A backtest cannot run; the message says why."""
