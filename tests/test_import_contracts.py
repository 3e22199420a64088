"""The house rules, checked in CI: import contracts, no import cycles, small files, a clean lint."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
from cli_helpers import ROOT
from waits import WAIT_S

BIN = Path(sys.executable).parent
MAX_LINES = 400


def test_import_contracts_hold():
    proc = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _cycle(graph, modules: set[str]) -> list[str] | None:
    """One import cycle among `modules` (function-level imports included), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.find_modules_directly_imported_by(m) & modules):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(modules):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles_in_the_package():
    graph = grimp.build_graph("workbench", exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if m.startswith("workbench.")}
    # A package importing its own submodules (registries, re-exports) is not a cycle between layers.
    cycle = _cycle(graph, modules - {m for m in modules if _is_package_init(m)})
    assert cycle is None, " -> ".join(cycle or [])


def _is_package_init(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return (path / "__init__.py").exists()


def test_no_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "workbench").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "workbench", "tests", "benchmarks", "scripts"],
                          capture_output=True, text=True, cwd=ROOT, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stdout[-4000:]
