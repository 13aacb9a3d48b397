"""The app skeleton's import rules (docs/development.md, "Layout"), checked over src/ with
`ast`, so a break fails the build rather than waiting for a reviewer:

- core imports no app (apps plug into core's registries; the project assembles routes);
- no app imports another app's models (`<app>/models.py` or `<app>/<sub>/models.py`): it
  reads through that app's `selectors.py` / `services.py`, or reacts to its events. Core is
  the platform every app stands on: its models (clients, sites, contacts, users, events)
  are the shared kernel and may be imported by any app;
- no import cycle between apps, and none between the sub-packages of one app — counting
  imports inside functions too, since a cycle hidden in a function is still a cycle.

Every import is counted wherever it is written (module level or inside a function).
Migrations are left out: they are history and reach models through `apps.get_model`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PROJECT = "watchkeeper"
# Every app: a package of the project with an apps.py (a new app is covered by itself).
APPS = tuple(sorted(p.parent.name for p in (SRC / PROJECT).glob("*/apps.py")))

# Exceptions, each with its reason; the goal is empty. Add one only with a reason a reviewer
# accepts, and prefer fixing the import. A listed import that is gone fails the build too,
# so the list only shrinks.
ALLOWED_MODEL_IMPORTS: dict[tuple[str, str], str] = {}
_BOTH_WAYS = ("alert and ticket agree both ways (issue 9, merged while the skeleton landed): "
              "monitoring shows an alert's ticket and reacts to ticket events; to move "
              "behind core.hooks / the event catalogue's registry so the apps import one way")
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {
    ("watchkeeper.monitoring.handlers", "watchkeeper.helpdesk.events"): _BOTH_WAYS,
    ("watchkeeper.monitoring.views", "watchkeeper.helpdesk.alert_tickets"): _BOTH_WAYS,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / PROJECT).rglob("*.py")
            if "migrations" not in p.parts}


def _is_module(name: str) -> bool:
    return name in _modules() or (SRC / Path(*name.split(".")) / "__init__.py").exists()


def _imports(module: str) -> list[tuple[str, int]]:
    """Every module `module` imports, anywhere in its file, with the line."""
    path = _modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if _is_module(full) else base, node.lineno))
    return [(name, line) for name, line in found if name.startswith(PROJECT + ".")]


def _app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in APPS else None


def _unit_of(module: str) -> str | None:
    """The sub-package of an app a module belongs to (`helpdesk.sla`), or None for the
    app's own top-level modules."""
    parts = module.split(".")
    if len(parts) < 4 or parts[1] not in APPS:
        return None
    sub = ".".join(parts[:3])
    return sub if (SRC / Path(*parts[:3]) / "__init__.py").exists() else None


def _edges():
    for module in sorted(_modules()):
        for target, line in sorted(set(_imports(module))):
            yield module, target, line


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_the_walker_sees_the_apps():
    # Guards the test itself: a wrong SRC would find nothing and pass vacuously.
    modules = _modules()
    assert {"core", "inventory", "agents", "monitoring", "helpdesk"} <= set(APPS)
    assert {f"{PROJECT}.{app}.models" for app in APPS} <= set(modules)
    assert any(target == f"{PROJECT}.core.models" for _, target, _ in _edges())


def test_core_imports_no_app():
    bad = [f"{src}:{line} imports {dst}" for src, dst, line in _edges()
           if _app_of(src) == "core" and _app_of(dst) not in (None, "core")]
    assert not bad, "core must not import an app (use a registry in core):\n" + "\n".join(bad)


def test_no_app_imports_another_apps_models():
    bad, seen = [], set()
    for src, dst, line in _edges():
        owner, user = _app_of(dst), _app_of(src)
        if owner and user and owner not in (user, "core") and dst.split(".")[-1] == "models":
            seen.add((src, dst))
            if (src, dst) not in ALLOWED_MODEL_IMPORTS:
                bad.append(f"{src}:{line} imports {dst}")
    bad = sorted(set(bad))
    assert not bad, ("read another app through its selectors.py/services.py, not its "
                     "models:\n" + "\n".join(bad))
    stale = sorted(set(ALLOWED_MODEL_IMPORTS) - seen)
    assert not stale, f"fixed, so remove from ALLOWED_MODEL_IMPORTS: {stale}"


def _cycle_report(edges, unit_of) -> tuple[list[list[str]], str]:
    """Cycles between the units (`unit_of(module)`) of the edges, and the imports in them."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        if (src, dst) in ALLOWED_CYCLE_EDGES:
            continue
        a, b = unit_of(src), unit_of(dst)
        if a and b and a != b:
            graph.setdefault(a, set()).add(b)
    cycles = _cycles(graph)
    detail = []
    for component in cycles:
        detail += [f"{src}:{line} imports {dst}" for src, dst, line in edges
                   if unit_of(src) in component and unit_of(dst) in component
                   and unit_of(src) != unit_of(dst)]
    return cycles, "\n".join(detail)


def test_no_import_cycle_between_apps():
    edges = list(_edges())
    stale = sorted(set(ALLOWED_CYCLE_EDGES) - {(s, d) for s, d, _ in edges})
    assert not stale, f"gone, so remove from ALLOWED_CYCLE_EDGES: {stale}"
    cycles, detail = _cycle_report(edges, _app_of)
    assert not cycles, f"import cycle between apps {cycles}:\n{detail}"


@pytest.mark.parametrize("app", APPS)
def test_no_import_cycle_between_sub_packages(app):
    edges = [e for e in _edges() if _app_of(e[0]) == app == _app_of(e[1])]
    cycles, detail = _cycle_report(edges, _unit_of)
    assert not cycles, f"import cycle between sub-packages {cycles}:\n{detail}"


def test_cycle_finder_finds_a_hidden_cycle():
    # The detector itself, on a graph like the one the rule forbids.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
