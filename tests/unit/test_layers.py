"""The folder-level import graph, built from the source: the layers as the architecture draws them.

Bottom up: ``schemas`` (contracts) <- ``runtime`` (the floor) <- the stages (``producers``, ``processors``,
``sinks``) <- ``deploy`` <- ``racelab`` (the shell) <- ``benchmarks``. A folder imports only folders of a lower layer:
no cycle, no stage importing another stage or the shell. Every import counts, also one inside a function.

``python -m tests.unit.test_layers`` prints the graph.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS: dict[str, int] = {
    "schemas": 0,
    "runtime": 1,
    "producers": 2,
    "processors": 2,
    "sinks": 2,
    "deploy": 3,
    "racelab": 4,
    "benchmarks": 5,
}
NOT_CODE = {"tests", ".venv", ".racelab", ".git", "build", "dist"}


def top_level_packages() -> list[str]:
    """Every top-level folder with Python source (tests excluded)."""
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in NOT_CODE and any(p.rglob("*.py")))


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module)
            elif node.level:
                parts = module.split(".")
                base = parts[: len(parts) - node.level + (1 if is_package else 0)]
                names.add(".".join([*base, *([node.module] if node.module else [])]))
    return names


def import_graph() -> dict[str, dict[str, set[str]]]:
    """``graph[a][b]``: the modules of folder ``a`` that import folder ``b``."""
    packages = set(top_level_packages())
    graph: dict[str, dict[str, set[str]]] = {name: defaultdict(set) for name in packages}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).with_suffix("")
            module = ".".join(relative.parts).removesuffix(".__init__")
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for name in _imported(tree, module, path.name == "__init__.py"):
                target = name.split(".")[0]
                if target in packages and target != package:
                    graph[package][target].add(module)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Every cycle of the folder graph, each once (as the path that closes it)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, {})):
            if target in path:
                loop = [*path[path.index(target) :], target]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    found.append(loop)
            else:
                walk(target, [*path, target])

    for start in sorted(graph):
        walk(start, [start])
    return found


def render(graph: dict[str, dict[str, set[str]]]) -> str:
    lines = []
    for package in sorted(graph, key=lambda p: (LAYERS.get(p, 99), p)):
        targets = sorted(graph[package], key=lambda p: (LAYERS.get(p, 99), p))
        lines.append(f"{package} (layer {LAYERS.get(package, '?')}) -> {', '.join(targets) or '(nothing)'}")
    return "\n".join(lines)


def test_every_top_level_package_has_a_layer():
    assert set(top_level_packages()) <= set(LAYERS), "place a new top-level folder in LAYERS"
    assert {"schemas", "runtime", "producers", "processors", "sinks", "racelab", "deploy"} <= set(top_level_packages())


def test_no_cycle_between_top_level_folders():
    graph = import_graph()
    print(render(graph))
    assert cycles(graph) == []


def test_every_import_goes_down_a_layer():
    graph = import_graph()
    upward = {
        f"{package} -> {target}": sorted(modules)
        for package, targets in graph.items()
        for target, modules in targets.items()
        if LAYERS[target] >= LAYERS[package]
    }
    assert upward == {}, f"imports that do not go down a layer: {upward}"


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The graph checks themselves can fail: a made-up graph with a stage importing the shell."""
    graph: dict[str, dict[str, set[str]]] = {
        "sinks": {"racelab": {"sinks.agent"}},
        "racelab": {"sinks": {"racelab.cli"}},
        "schemas": {},
    }
    assert cycles(graph) == [["racelab", "sinks", "racelab"]]
    module = "processors.normalize"
    tree = ast.parse("from ..runtime import x\nfrom . import kra\nimport racelab.cli\n")
    assert _imported(tree, module, is_package=True) == {"processors.runtime", "processors.normalize", "racelab.cli"}


if __name__ == "__main__":
    print(render(import_graph()))
