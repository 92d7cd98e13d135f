"""SQL alert rules: parsing, the pure evaluator, state in the store, notifiers, SLOs.

``rules`` parses and validates rules files; ``evaluator.step`` is the state machine;
``state`` persists it in the ``alerts``/``alert_history`` tables; ``service.Alerting`` runs
groups on their intervals inside ``serve``; ``notifiers`` deliver; ``slo`` generates
burn-rate rules; ``check``, ``ruletest`` and ``backtest`` back ``otel-hms rules``.
"""

from __future__ import annotations

from .errors import BacktestError, RuleFileError, RuleTestFailure
from .evaluator import Instance, Notice, QueryFailed, Sample, Step, Transition, step
from .rule_files import load_rules
from .rules import Group, Rule, RuleSet
from .service import Alerting

__all__ = ["Alerting", "BacktestError", "Group", "Instance", "Notice", "QueryFailed", "Rule",
           "RuleFileError", "RuleSet", "RuleTestFailure", "Sample", "Step", "Transition",
           "load_rules", "step"]
