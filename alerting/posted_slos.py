"""SLOs defined over HTTP (``POST /api/v1/slos``): checked, and turned into rules.

The store keeps their definitions (``storage.slo_definitions``); rules files define the
others.
"""

from __future__ import annotations

from typing import Any

from .errors import RuleFileError
from .rules import RuleSet
from .slo import parse_slos

SOURCE = "POST /api/v1/slos"


def api_rule_set(definitions: list[dict[str, Any]]) -> RuleSet:
    """The rule set of SLOs posted over HTTP.  No ``${ENV}`` expansion: the text comes from
    a client, and must not read the server's environment."""
    if not definitions:
        return RuleSet()
    slos, groups = parse_slos(definitions, SOURCE)
    return RuleSet(tuple(groups), {}, (), tuple(slos), ())


def validate_posted(definition: Any) -> str:
    """The posted SLO's name, or ``RuleFileError`` saying what is wrong with it."""
    if not isinstance(definition, dict):
        raise RuleFileError(f"{SOURCE}: the body must be one SLO as a JSON object")
    parse_slos([definition], SOURCE)
    return str(definition["name"])
