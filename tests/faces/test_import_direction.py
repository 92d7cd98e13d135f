"""Imports run one way, the data's way, and never in a circle.

Each room (a folder installed as ``otel_hms.<room>``, see pyproject's package-dir) may import
only the rooms below it: storage knows nothing of the receiver, the query layer or alerting;
the receiver and the query layer know storage; alerting asks the query layer (and stores
rule-test input through the receiver); ``otel_hms`` itself (the CLI, the HTTP API,
configuration, the SDK) wires them all.  Every import counts, the ones inside functions too:
a lazy import is still a dependency, it only hides it.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

from conftest import ROOT

# The rooms, bottom up, and what each may import besides itself.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "storage": frozenset({"common"}),
    "receiver": frozenset({"common", "storage"}),
    "query": frozenset({"common", "storage"}),
    "alerting": frozenset({"common", "storage", "receiver", "query"}),
    "otel_hms": frozenset({"common", "storage", "receiver", "query", "alerting"}),
}


def _package_dirs() -> dict[str, Path]:
    """Installed package name -> folder, from pyproject (``otel_hms.storage`` -> storage/)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in config["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module of the package by its installed name."""
    dirs = _package_dirs()
    found: dict[str, Path] = {}
    for package, folder in dirs.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else "otel_hms"


def imports(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that ``module`` imports (relative ones resolved)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


def graph() -> dict[str, set[str]]:
    found = modules()
    names = set(found)
    return {m: set(imports(m, p, names)) for m, p in found.items()}


def upward(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, t) for m, targets in edges.items() for t in targets
            if room(t) != room(m) and room(t) not in MAY_IMPORT[room(m)]}


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_rooms_are_read() -> None:
    found = modules()
    for name in ("otel_hms.cli", "otel_hms.receiver.decode", "otel_hms.storage.writer",
                 "otel_hms.alerting.notifiers.webhook"):
        assert name in found, name


def test_imports_run_down_the_rooms() -> None:
    assert upward(graph()) == set(), "imports that run the wrong way"


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_the_check_sees_what_it_guards_against() -> None:
    """A wrong-way import and a circle, drawn by hand, are both found."""
    edges = {"otel_hms.storage.writer": {"otel_hms.query.spec"},
             "otel_hms.query.spec": {"otel_hms.storage.writer"}}
    assert upward(edges) == {("otel_hms.storage.writer", "otel_hms.query.spec")}
    assert circles(edges) == [{"otel_hms.storage.writer", "otel_hms.query.spec"}]
