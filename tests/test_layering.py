"""Package layering: the import graph between logicrl's packages (the first name under ``logicrl``) has no
cycle, and the engine imports neither of the packages that use it.

Imports are read with ``ast`` from every module, function-level (lazy) imports included: a cycle through a
lazy import is still a cycle between the packages.

Run: .venv/bin/python -m pytest tests/test_layering.py -q
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import logicrl

SOURCE = Path(logicrl.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """The absolute ``logicrl.*`` module names that the file at ``path`` imports (``from a import b`` gives a
    and a.b, since b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "logicrl"}


def package_of(module: str) -> str | None:
    """``logicrl.rl.trainer`` → ``rl``; ``logicrl.io`` → ``io``; None for ``logicrl`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph() -> dict[str, dict[str, set[str]]]:
    """package → imported package → the files that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE.parent).with_suffix("")
        source = package_of(".".join(relative.parts))
        for module in imported_modules(path):
            target = package_of(module)
            if source and target and target != source and (
                    (SOURCE / target).is_dir() or (SOURCE / f"{target}.py").is_file()):
                graph[source][target].add(str(path.relative_to(SOURCE)))
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle of the graph as a list of packages (first = last), or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the stack, "done" after
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_engine_imports_neither_rl_nor_evaluate():
    graph = package_graph()
    assert "engine" in {target for targets in graph.values() for target in targets}  # the walk sees it
    assert not {"rl", "evaluate"} & set(graph["engine"]), dict(graph["engine"])


def test_packages_import_each_other_one_way():
    graph = package_graph()
    cycle = find_cycle(graph)
    where = cycle and [f"{a} -> {b}: {sorted(graph[a][b])}" for a, b in zip(cycle, cycle[1:])]
    assert cycle is None, where


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": set(), "c": set()}, "b": {"c": set()}}) is None


def test_the_pure_modules_load_without_torch():
    """The reward, the puzzles and the accuracy metrics (pass@k, majority vote, the per-level table) are plain
    Python: a library user scoring saved samples does not wait for torch (evaluate.metrics took 1.3 s to import
    when the per-level table lived beside generation, in evaluate.scoring)."""
    code = ("import sys, logicrl.evaluate.metrics, logicrl.reward, logicrl.puzzles.dataset, logicrl.puzzles.files\n"
            "print(*sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == ""
