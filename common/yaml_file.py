"""Reading the YAML files a person writes (config, rules, rule tests, dashboards).

One reader so every file's error says the same things: what could not be read, or the line
and the problem where the YAML is broken.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlFileError(Exception):
    """The file cannot be read or parsed; ``str(exc)`` says why, without the path."""


def read_yaml(path: str, what: str) -> Any:
    """The parsed document in ``path`` (``what`` names the file's role in errors)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise YamlFileError(f"cannot read {what}: {reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlFileError(f"not valid YAML{at}: {problem}") from None
