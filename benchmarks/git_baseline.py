"""The code a benchmark compares against, taken from git at a given commit and imported under another
package name, so that the old and the new version run in the same process."""
from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from prune_bench_common import ROOT


def import_from_git(rev: str, folder: str, modules: list[str], package: str) -> dict[str, ModuleType]:
    """`folder/<name>.py` for each name at `rev`, as `package.<name>` (relative imports between them work)."""
    where = Path(tempfile.mkdtemp(prefix=f"{package}_"))
    (where / package).mkdir()
    (where / package / "__init__.py").write_text("")
    for name in modules:
        source = subprocess.run(["git", "show", f"{rev}:{folder}/{name}.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        (where / package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(where))
    return {name: importlib.import_module(f"{package}.{name}") for name in modules}
