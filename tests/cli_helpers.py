"""The repository root and a runner for the real `workbench` command (in a subprocess)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from waits import WAIT_S

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m workbench ARGS...`; returns the CompletedProcess (stdout, stderr, returncode)."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=WAIT_S)
