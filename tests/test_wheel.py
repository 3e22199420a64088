"""The wheel carries the top-level `sample_models/` and `resources/` (recipes, style sheet, icons) inside the package,
and a non-editable install works."""
from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from cli_helpers import ROOT
from waits import WAIT_S


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return next(out.glob("workbench-*.whl"))


def test_wheel_holds_the_samples_recipes_and_style(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("workbench/sample_models/samples.json", "workbench/sample_models/digits.npz",
                   "workbench/sample_models/digits_mlp.safetensors", "workbench/sample_models/digits_resnet.init.safetensors",
                   "workbench/resources/recipes/deep_compression.yaml", "workbench/resources/recipes/structured_channels.yaml",
                   "workbench/resources/style.qss", "workbench/resources/icons/workbench.svg", "workbench/core/specs.py"):
        assert needed in names, needed
    for top in ("sample_models", "resources"):      # every file of the top-level folders, under the package
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert f"workbench/{top}/{path.relative_to(ROOT / top).as_posix()}" in names, path
    assert not any(n.startswith(("tests/", "benchmarks/", "scripts/", "sample_models/", "resources/")) for n in names)


def test_torch_is_a_range_so_a_users_own_build_is_kept(wheel):
    """pip keeps an installed torch (e.g. a CUDA build) that satisfies the range; make test installs the tested
    versions through constraints.txt."""
    meta = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    requires = [line.split(":", 1)[1].strip().replace(" ", "") for line in
                zipfile.ZipFile(wheel).read(meta).decode().splitlines() if line.startswith("Requires-Dist:")]
    torch_req = next(r for r in requires if r.startswith("torch") and not r.startswith(("torchvision", "torch-")))
    vision_req = next(r for r in requires if r.startswith("torchvision"))
    assert "==" not in torch_req and ">=2.14.1" in torch_req, torch_req
    assert "==" not in vision_req and ">=0.29.1" in vision_req, vision_req
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    assert pins == {"torch": "2.14.1", "torchvision": "0.29.1"}


@pytest.mark.slow
def test_non_editable_install_inspects_the_sample(wheel, tmp_path):
    """Installed next to this environment's packages (no downloads), run from a folder outside the checkout."""
    env = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env)
    python = env / "bin" / "python"
    site = next((env / "lib").glob("python3*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "deps.pth").write_text("\n".join(ours) + "\n")      # torch & co. from this environment, read-only
    target = tmp_path / "installed"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (site / "aaa_workbench.pth").write_text(str(target) + "\n")   # sorted before deps.pth: the wheel, not the checkout
    run = subprocess.run([str(python), "-c", "import workbench, sys; print(workbench.__file__); "
                          "from workbench.cli import main; sys.exit(main(['inspect', 'sample:digits_mlp', '--data', 'sample:digits']))"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[0].startswith(str(target))
    assert "test accuracy on sample:digits: 0.9694" in run.stdout
    listing = subprocess.run([str(python), "-c", "import json; from workbench.core import resources as r; from workbench.core.recipe import Recipe; "
                              "print(json.dumps({'recipes': {n: str(p) for n, p in r.ready_made_recipes().items()}, "
                              "'stages': [len(Recipe.load(n).stages) for n in r.ready_made_recipes()], "
                              "'style': str(r.style_sheet()), 'samples': str(r.samples_dir())}))"],
                             capture_output=True, text=True, timeout=WAIT_S, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr[-2000:]
    found = json.loads(listing.stdout)
    assert set(found["recipes"]) == {p.stem for p in (ROOT / "resources" / "recipes").glob("*.yaml")}
    assert all(path.startswith(str(target / "workbench" / "resources" / "recipes")) for path in found["recipes"].values())
    assert all(n > 0 for n in found["stages"])                                   # each validates by name
    assert found["style"] == str(target / "workbench" / "resources" / "style.qss")
    assert found["samples"] == str(target / "workbench" / "sample_models")
