"""Annotation templates: Jinja2 in its sandbox, seeing ``labels``, ``value`` and ``rule``.

The sandbox keeps a rule file from reaching Python internals; a template that fails at
evaluation renders its error text instead, so a typo never stops an alert from being sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=jinja2.Undefined)
_STRICT = ImmutableSandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)


def compile_error(text: str) -> str | None:
    """The syntax error in template ``text``, or None if it compiles."""
    try:
        _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error: {exc.message} (line {exc.lineno})"
    return None


def _context(labels: Mapping[str, str], value: float | None,
             rule: Mapping[str, Any]) -> dict[str, Any]:
    return {"labels": dict(labels), "value": value, "rule": dict(rule)}


def render(text: str, labels: Mapping[str, str], value: float | None,
           rule: Mapping[str, Any]) -> str:
    """``text`` rendered for one alert instance; errors become visible text, never raise."""
    if "{" not in text:
        return text
    try:
        return _ENV.from_string(text).render(_context(labels, value, rule))
    except Exception as exc:  # a broken template must not stop the alert itself
        return f"<template error: {exc}>"


def render_strict(text: str, labels: Mapping[str, str], value: float | None,
                  rule: Mapping[str, Any]) -> str:
    """Like ``render`` but raising on undefined names: what ``rules check`` uses."""
    return _STRICT.from_string(text).render(_context(labels, value, rule))
