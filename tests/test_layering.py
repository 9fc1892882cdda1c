"""The layout's rules (docs/architecture.md), read from the import graph of the source (nothing is imported).

Every `import` counts, at module level or inside a function, `TYPE_CHECKING`
blocks included: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cwm_jax", "synth", "planners")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The module of ours that `name` (a module or a name inside one) belongs to, or None."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, tree: ast.Module) -> set[str]:
    """Our modules that `module` imports (`from pkg import sub` counts as pkg.sub, not pkg)."""
    is_package = modules()[module].name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {resolve(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                found.add(resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules() else resolve(base))
    return found - {None, module}


@cache
def trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in modules().items()}


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(imports_of(name, tree)) for name, tree in trees().items()}


def edges(source_filter, target_filter) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph().items() if source_filter(a)
                  for b in targets if target_filter(b))


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for root in graph():
        if root in index:
            continue
        work = [(root, iter(sorted(graph()[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph()[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_packages():
    assert {"cwm_jax.planning", "cwm_jax.commands.main", "synth.search.harness", "planners.mcts"} <= set(graph())
    assert "cwm_jax.planning" in graph()["cwm_jax.commands.plan"]
    assert "synth.search.harness" in graph()["synth.search.run"]


def test_planners_is_a_leaf():
    assert edges(lambda a: in_package(a, "planners"),
                 lambda b: in_package(b, "cwm_jax") or in_package(b, "synth")) == []


def test_only_the_commands_import_synth():
    assert edges(lambda a: in_package(a, "cwm_jax") and not in_package(a, "cwm_jax.commands"),
                 lambda b: in_package(b, "synth")) == []


def test_nothing_in_the_libraries_imports_the_commands():
    assert edges(lambda a: not in_package(a, "cwm_jax.commands") and a != "cwm_jax.__main__",
                 lambda b: in_package(b, "cwm_jax.commands")) == []


def test_no_import_cycles():
    assert cycles() == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_the_line_limit(package):
    long = {name: n for name, path in modules().items() if in_package(name, package)
            and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_no_private_name_crosses_a_module():
    """`from ours import _x` and `module._x` on a module of ours are what `__all__` is for."""
    found = []
    for name, tree in trees().items():
        aliases = {}  # local name -> module of ours it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if alias.name.startswith("_") and not alias.name.startswith("__") and resolve(node.module):
                        found.append(f"{name}: from {node.module} import {alias.name}")
                    if full in modules():
                        aliases[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in modules():
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    assert found == []


def test_every_module_declares_its_public_names():
    """An explicit `__all__` in every module (package `__init__`s and the reference CWMs, which are CWM programs, aside)."""
    missing = [name for name, tree in trees().items()
               if modules()[name].name not in ("__init__.py", "__main__.py") and not in_package(name, "cwm_jax.reference")
               and not any(isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
                           for node in tree.body)]
    assert missing == []
