"""SQL alert rules: parsing, the pure evaluator, state in the store, notifiers, SLOs.

``rules`` holds the rule types and parses groups, ``rule_files`` whole files (notifiers,
routes, SLOs, several merged); ``evaluator.step`` is the state machine; ``query`` runs rule
SQL through the query layer's read-only gate; ``state`` keeps instances in the store's alert
tables; ``service.Alerting`` runs groups on their intervals inside ``serve``;
``notifiers`` deliver; ``slo`` generates burn-rate rules (``posted_slos``: those posted over
HTTP); ``check``, ``ruletest`` (its input series: ``ruletest_input``) and ``backtest`` back
``otel-hms rules``.  It imports common, storage, query and, to store rule-test input as
ingest does, the receiver; never the otel_hms faces.
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
