"""The alerting errors a user can cause, each with a one-line message saying what to fix.

- ``RuleFileError``: a rules file is unreadable or invalid; names file, group, rule and field.
- ``RuleTestFailure``: ``otel-hms rules test`` found alerts that differ from the expected ones.
- ``BacktestError``: a backtest cannot run (no store, unknown rule, bad ``--since``).
"""

from __future__ import annotations


class RuleFileError(Exception):
    """A rules file cannot be used; the message names the file, rule and field."""


class RuleTestFailure(Exception):
    """Rule unit tests failed; the message lists every difference."""


class BacktestError(Exception):
    """A backtest cannot run; the message says why."""
