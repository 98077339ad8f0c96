"""The house: symmem's modules import each other in one direction, with no cycle.

Every ``import symmem...`` / ``from symmem... import ...`` counts, those inside
functions too; only imports under ``if TYPE_CHECKING:`` are exempt (they never
run).  An edge goes to the most specific module named (``from symmem.memory
import config`` -> ``symmem.memory.config``; ``from symmem.memory import build``
-> ``symmem.memory``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import symmem

ROOT = Path(symmem.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, base: str, level: int) -> str:
    if level == 0:
        return module
    package = base.split(".")[
        : -level if MODULES[base].name != "__init__.py" else len(base.split(".")) - level + 1
    ]
    return ".".join([*package, module] if module else package)


def imports_of(name: str) -> set[str]:
    """The symmem modules that module ``name`` imports (TYPE_CHECKING blocks aside)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", name, node.level)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        for sub_node in ast.iter_child_nodes(node):
            visit(sub_node)

    visit(tree)
    out = set()
    for target in found:
        while target and target not in MODULES:  # symmem.x.y where y is a name in x
            target = target.rpartition(".")[0]
        if target.startswith("symmem") and target != name and target != "symmem":
            out.add(target)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    # the check itself can fail: a planted cycle is found, with its path
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_count() -> None:
    # symmem.model imports the memory package at the top; the walk sees imports anywhere
    assert "symmem.memory" in GRAPH["symmem.model"]
    assert "symmem.quantity" in GRAPH["symmem.solve"]


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("symmem.syntax", "sympy"),  # the parser never imports sympy
        ("symmem.export", "lark"),  # the exporters never import lark
    ],
)
def test_one_direction_between_stages(low: str, high: str) -> None:
    text = MODULES[low].read_text(encoding="utf-8")
    assert f"import {high}" not in text


def test_the_cli_holds_no_formula_and_the_api_never_reaches_up() -> None:
    # below the CLI, nothing imports it; below the API (symmem.model), nothing imports the API
    for name, targets in GRAPH.items():
        if not name.startswith(("symmem.cli", "symmem.__main__")):
            assert not any(t.startswith("symmem.cli") for t in targets), name
        if name not in ("symmem.model", "symmem") and not name.startswith(
            ("symmem.cli", "symmem.__main__")
        ):
            assert "symmem.model" not in targets, f"{name} imports the API module symmem.model"


def test_every_package_ships() -> None:
    # a package missing from pyproject's list installs from a checkout but not from a wheel
    import tomllib

    listed = set(
        tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    # every folder of the package ships: those of modules and those of data (symmem/_page)
    on_disk = {
        _module_name(d / "__init__.py")
        for d in [ROOT, *ROOT.rglob("*")]
        if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.iterdir())
    }
    assert on_disk <= listed, f"add to pyproject's packages: {sorted(on_disk - listed)}"


def test_a_command_loads_only_its_own_module() -> None:
    # `symmem memory` imports neither the sweep's numpy nor the other commands' modules
    import subprocess
    import sys

    code = (
        "import sys; sys.argv = ['symmem', 'memory', 'gpt2', '--json']\n"
        "from symmem.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('symmem.cli.') or m == 'numpy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert "numpy" not in loaded
    assert loaded - {"numpy"} == {
        "symmem.cli._options",
        "symmem.cli.common",
        "symmem.cli.memory",
    }


def test_every_command_module_defines_its_command() -> None:
    import importlib

    from symmem.cli import command_modules

    for name, module in command_modules().items():
        mod = importlib.import_module(f"symmem.cli.{module}")
        assert callable(getattr(mod, module)), (
            f"symmem {name}: symmem/cli/{module}.py defines no {module}()"
        )
