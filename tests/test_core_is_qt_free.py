"""The core must run headless: importing every core module loads no Qt and no pyqtgraph."""
import subprocess
import sys

from cli_helpers import ROOT
from waits import WAIT_S

SCRIPT = r"""
import importlib, pkgutil, sys
import workbench.core as core
names = []
for m in pkgutil.walk_packages(core.__path__, "workbench.core."):
    importlib.import_module(m.name)
    names.append(m.name)
import workbench.cli, workbench.commands.run, workbench.commands.inspect, workbench.commands.export
bad = sorted(k for k in sys.modules if k.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "superqt", "shiboken6"))
print(len(names), "modules")
print("QT:" + ",".join(bad))
"""


def test_core_modules_import_no_qt():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[0]) >= 15
    assert out.stdout.strip().endswith("QT:"), out.stdout
