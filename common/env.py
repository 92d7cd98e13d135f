"""``${VAR}`` and ``${VAR:-default}`` in the YAML files a person writes (config, rules), so
secrets and per-host values stay out of the files."""

from __future__ import annotations

import os
import re
from typing import Any

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, where: str, problems: list[str]) -> Any:
    """``value`` with every reference replaced, through mappings and lists.  A variable that
    is not set and has no default adds a line to ``problems`` (naming ``where`` and the fix)
    and expands to nothing."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(f"{where}: environment variable {name} is not set; set it or "
                            f"write ${{{name}:-default}}")
            return ""
        return _REFERENCE.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}", problems) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    return value
