"""The type checker passes: mypy with the project's configuration (pyproject.toml `[tool.mypy]`: strict on
workbench/core, mypy's default checks on the rest)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from waits import WAIT_S

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert proc.returncode == 0, f"mypy found problems:\n{proc.stdout}{proc.stderr}"
    assert "Success: no issues found" in proc.stdout, proc.stdout
