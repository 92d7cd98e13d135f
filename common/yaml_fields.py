"""Typed reads of one mapping of a YAML file a person writes, noting every problem and going on.

Rules files and dashboard files report every mistake of a file in one run, so a wrong field
does not stop the parse: ``Fields`` appends ``<where>.<field>: <what is wrong>`` (or
``<file>: <field>: …`` for the file's top mapping) to the shared ``problems`` list and hands
back a default, and the caller drops whatever had problems.  ``where`` names the file and
then the place, by name where it has one (``rules.yaml: group permits rule HighLatency``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from otel_hms.common.durations import parse_seconds

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")


def located(kind: str, raw: Any, key: str, index: str) -> str:
    """``group permits`` when ``raw[key]`` is a usable name, else ``index`` (``groups[0]``)."""
    name = raw.get(key) if isinstance(raw, dict) else None
    return f"{kind} {name}" if isinstance(name, str) and NAME.match(name) else index


class Fields:
    """One mapping at ``where``; ``whole`` is False when it was not a mapping at all (then
    its fields are not reported one by one).  ``top`` is the file's own mapping: ``where`` is
    then the file's name and a field's problem reads ``<file>: <field>: …``."""

    def __init__(self, raw: Any, where: str, allowed: Sequence[str],
                 problems: list[str], top: bool = False) -> None:
        self.where, self.problems, self.top = where, problems, top
        self.whole = isinstance(raw, dict)
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping (got {type(raw).__name__})")
            raw = {}
        for key in raw:
            if key not in allowed:
                problems.append(f"{where}: unknown field {key!r}; known fields: "
                                + ", ".join(allowed))
        self.raw: dict[Any, Any] = raw

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}{': ' if self.top else '.'}{key}: {message}")

    def text(self, key: str, required: bool = False) -> str | None:
        """A non-empty string, stripped; a number written bare is taken as its text."""
        value = self.raw.get(key)
        if value is None:
            if required and self.whole:
                self.fail(key, "is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool) \
                or not str(value).strip():
            self.fail(key, f"must be a non-empty string (got {value!r})")
            return None
        return str(value).strip()

    def string(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            if required and self.whole:
                self.fail(key, "is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(key, f"must be a non-empty string (got {value!r})")
            return None
        return value

    def name(self, key: str) -> str:
        value = self.string(key, required=True)
        if value is not None and not NAME.match(value):
            self.fail(key, f"must be a name of letters, digits, _ . : - (got {value!r})")
            return ""
        return value or ""

    def duration(self, key: str, default: float) -> float:
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            seconds: float = parse_seconds(value)
        except ValueError:
            self.fail(key, f"must be a duration like 30s, 5m or 1h (got {value!r})")
            return default
        return seconds

    def labels(self, key: str) -> dict[str, str]:
        value = self.raw.get(key) or {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping of names to strings (got {value!r})")
            return {}
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k or isinstance(v, dict | list) or v is None:
                self.fail(key, f"must map names to strings (got {k!r}: {v!r})")
                continue
            out[k] = str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def names(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a list of notifier names (got {value!r})")
            return ()
        return tuple(value)

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)} (got {value!r})")
            return default
        return str(value)
