"""``label_replace`` and ``label_join``, as Prometheus 2.42 computes them (design §3.3).

Regexes are RE2 as in Go: checked first as Go 1.19 checks them (DuckDB's RE2, see
``parse.regex_error``: google-re2's newer RE2 accepts ``(?<name>…)``, Go 1.19 did not), then
run by google-re2, fully anchored.  The replacement expands ``$1``, ``${1}``, ``$name`` and
``${name}`` by Go's ``Regexp.ExpandString`` rules: ``$`` takes the longest run of letters,
digits and ``_`` as the name (``$1x`` is the group named ``1x``: empty), ``$$`` is ``$``,
an unknown or unmatched group is empty, a ``$`` with no name after it stays.
"""

from __future__ import annotations

import re
from typing import Any

import re2

from .parse import regex_error
from .values import EvaluationError, Labels, Sample

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _name_length(text: str) -> int:
    i = 0
    while i < len(text) and (text[i].isalpha() or text[i].isdecimal() or text[i] == "_"):
        i += 1
    return i


def _group(name: str, match: Any, names: dict[str, int]) -> str:
    if name.isdecimal() and name.isascii() and not (name[0] == "0" and len(name) > 1):
        index = int(name) if len(name) <= 8 else -1
    else:
        index = names.get(name, -1)
    if 0 <= index <= match.re.groups and match.start(index) >= 0:
        return str(match.group(index))
    return ""


def expand(template: str, match: Any, names: dict[str, int]) -> str:
    """Go's ``Regexp.ExpandString`` of ``template`` for ``match``."""
    out: list[str] = []
    while "$" in template:
        before, _, template = template.partition("$")
        out.append(before)
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        brace = template.startswith("{")
        body = template[1:] if brace else template
        length = _name_length(body)
        if length == 0 or (brace and body[length:length + 1] != "}"):
            out.append("$")  # malformed: the $ stays as text
            continue
        out.append(_group(body[:length], match, names))
        template = body[length + (1 if brace else 0):]
    out.append(template)
    return "".join(out)


def _with(labels: Labels, name: str, value: str) -> Labels:
    kept = {k: v for k, v in labels if k != name}
    if value:
        kept[name] = value
    return tuple(sorted(kept.items()))


def label_replace(vector: list[Sample], dst: str, replacement: str, src: str,
                  regex: str) -> list[Sample]:
    if regex_error(regex) is not None:
        raise EvaluationError(f"invalid regular expression in label_replace(): {regex}")
    if not _LABEL_NAME.fullmatch(dst):
        raise EvaluationError(f"invalid destination label name in label_replace(): {dst}")
    compiled = re2.compile(f"^(?:{regex})$")
    names = dict(compiled.groupindex)
    out = []
    for sample in vector:
        match = compiled.match(dict(sample.labels).get(src, ""))
        if match is None:
            out.append(sample)
        else:
            out.append(Sample(_with(sample.labels, dst, expand(replacement, match, names)),
                              sample.value))
    return out


def label_join(vector: list[Sample], dst: str, separator: str, sources: list[str]
               ) -> list[Sample]:
    for src in sources:
        if not _LABEL_NAME.fullmatch(src):
            raise EvaluationError(f"invalid source label name in label_join(): {src}")
    if not _LABEL_NAME.fullmatch(dst):
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")
    out = []
    for sample in vector:
        labels = dict(sample.labels)
        joined = separator.join(labels.get(src, "") for src in sources)
        out.append(Sample(_with(sample.labels, dst, joined), sample.value))
    return out


__all__ = ["expand", "label_join", "label_replace"]
