"""The house rules, checked in CI: import contracts, no import cycles, small files, a clean lint."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
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
    """Package `__init__` modules included: a registry that imports its members statically while they import it
    back is a cycle too (the stage and export registries import their members by name, at run time)."""
    graph = grimp.build_graph("workbench", exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if m == "workbench" or m.startswith("workbench.")}
    assert {"workbench", "workbench.core", "workbench.core.stages"} <= modules
    cycle = _cycle(graph, modules)
    assert cycle is None, " -> ".join(cycle or [])


class _Graph:
    def __init__(self, edges: dict[str, set[str]]) -> None:
        self.edges = edges

    def find_modules_directly_imported_by(self, module: str) -> set[str]:
        return self.edges.get(module, set())


def test_the_cycle_check_sees_a_cycle_through_a_package_init():
    graph = _Graph({"p": {"p.member"}, "p.member": {"p"}, "p.other": {"p.member"}})
    assert _cycle(graph, {"p", "p.member", "p.other"}) == ["p", "p.member", "p"]
    assert _cycle(_Graph({"p": {"p.member"}, "p.other": {"p.member"}}), {"p", "p.member", "p.other"}) is None


def _contract_layers(container: str) -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers" and c.get("containers") == [container])
    return {name.strip() for layer in contract["layers"] for name in re.split(r"[:|]", layer)}


@pytest.mark.parametrize("container", ["workbench.core", "workbench.ui"])
def test_every_module_is_in_its_layers_contract(container):
    folder = ROOT / Path(*container.split("."))
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    modules |= {p.parent.name for p in folder.glob("*/__init__.py")}
    listed = _contract_layers(container)
    assert modules - listed == set(), f"{container}: not in the layers contract"
    assert listed - modules == set(), f"{container}: the layers contract names modules that do not exist"


def test_no_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "workbench").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "workbench", "tests", "benchmarks", "scripts"],
                          capture_output=True, text=True, cwd=ROOT, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stdout[-4000:]
