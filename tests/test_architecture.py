"""The package's shape: no import cycles, MLflow imported by the tracking module alone, a docstring per module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "automl"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every automl module -> the automl modules it imports, at module level or inside functions."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_between_automl_modules() -> None:
    graph = _imports()
    # a package's __init__ re-exporting its children is not a cycle of behaviour: drop parent -> child edges
    for name in graph:
        graph[name] = {
            t
            for t in graph[name]
            if not (t.startswith(f"{name}.") and (PACKAGE.parent / name.replace(".", "/")).is_dir())
        }
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_only_the_tracking_module_imports_mlflow() -> None:
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
                importers.add(_module_name(path))
    assert importers == {"automl.tracking"}


def test_every_module_has_a_docstring() -> None:
    modules = [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "cli").rglob("*.py")]
    missing = [str(p.relative_to(PACKAGE.parent)) for p in modules if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring saying their job: {missing}"


def test_every_package_ships_in_a_non_editable_install() -> None:
    """``pip install .`` installs the packages pyproject.toml lists: a sub-package left out breaks the install."""
    import re

    root = PACKAGE.parent
    line = re.search(r"^packages = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.MULTILINE)
    assert line is not None, "pyproject.toml lists no packages"
    listed = set(re.findall(r'"([\w.]+)"', line.group(1)))
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for base in (PACKAGE, root / "cli")
        for init in base.rglob("__init__.py")
    }
    assert found <= listed, f"packages missing from [tool.setuptools] packages: {sorted(found - listed)}"
