"""Memory estimates before large allocations (core/memory_budget.py): exact sizes of known models, the budget
and where it comes from, and hostile specs and recipes refused with exit 2, the estimate and the budget,
in bounded memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from cli_helpers import ROOT, run_cli
from hostile_inputs import image_folder
from peak_rss import PEAK_RSS_SOURCE
from torch import nn

from workbench.core import memory_budget as mb
from workbench.core.errors import BadInput
from workbench.core.limits import human_bytes
from workbench.core.models import LoadedModel, build_base
from workbench.core.record_checks import count, on_meta


@pytest.fixture(autouse=True)
def no_budget_set(monkeypatch):
    for name in (mb.ENV, "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mb, "_from_flag", False)


@pytest.mark.parametrize("text, nbytes", [("8G", 8 * 10**9), ("512M", 512 * 10**6), ("1.5GB", 1.5e9), ("2GiB", 2 * 2**30),
                                          ("64mib", 64 * 2**20), ("123456789", 123456789), (" 3 T ", 3 * 10**12)])
def test_sizes_parse(text, nbytes):
    assert mb.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["abc", "-1G", "0", "1e9", "8X", "G", "", "100", "5P"])
def test_bad_sizes_are_refused_naming_the_flag(text):
    with pytest.raises(BadInput, match=r"^--memory-budget: "):
        mb.parse_size(text)


def test_the_budget_is_the_available_memory_unless_set(monkeypatch):
    available = mb.available_memory()
    assert available is not None and 0 < available <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    monkeypatch.setattr(mb, "available_memory", lambda: 10 * 10**9)
    assert mb.budget() == (10 * 10**9, "the memory available now; change it with --memory-budget SIZE")
    monkeypatch.setenv(mb.ENV, "3G")
    assert mb.budget() == (3 * 10**9, f"{mb.ENV}=3G")
    mb.set_budget("2G")                                       # what --memory-budget does
    assert os.environ[mb.ENV] == "2G" and mb.budget() == (2 * 10**9, "--memory-budget 2G")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")               # torchrun's processes on this machine share it
    assert mb.budget() == (5 * 10**8, "--memory-budget 2G, shared by 4 processes")
    monkeypatch.setenv(mb.ENV, "lots")
    with pytest.raises(BadInput, match=f"^{mb.ENV}: expected a size"):
        mb.budget()


def test_model_estimate_is_its_exact_weights_twice(monkeypatch):
    module = on_meta(lambda: build_base("arch:mlp:hidden=1000-500", (1, 8, 8), 10, check_size=False)[0])
    weights = (64 * 1000 + 1000 + 1000 * 500 + 500 + 500 * 10 + 10) * 4
    assert count(module) == (weights // 4, weights)
    monkeypatch.setenv(mb.ENV, str(2 * weights))
    assert mb.model_problem(weights) is None
    monkeypatch.setenv(mb.ENV, str(2 * weights - 1))
    assert mb.model_problem(weights) == (
        "needs about 4.6 MB of memory (weights 2.3 MB, second copy (initial or loaded weights) 2.3 MB), more than "
        f"the memory budget of 4.6 MB ({mb.ENV}={2 * weights - 1}); refused before allocating it")
    with pytest.raises(BadInput, match=r"^arch:mlp:hidden=1000-500: needs about 4.6 MB"):
        build_base("arch:mlp:hidden=1000-500", (1, 8, 8), 10)


def test_activations_of_a_linear_stack_are_the_sum_of_its_outputs():
    stack = nn.Sequential(nn.Flatten(), nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 30), nn.ReLU(inplace=True), nn.Linear(30, 5))
    before = [p.clone() for p in stack.parameters()]
    per_sample = (12 + 20 + 20 + 30 + 5) * 4                 # the in-place ReLU reuses its input
    for batch in (1, 7):
        assert mb.activation_sizes(stack, (1, 3, 4), batch) == (per_sample, 30 * 4)
    assert all(torch.equal(a, b) and b.device.type == "cpu" for a, b in zip(stack.parameters(), before))
    assert mb.activation_sizes(stack.to("meta"), (1, 3, 4)) == (per_sample, 30 * 4)
    assert mb.activation_sizes(stack, (1, 3, 5)) is None      # a model that does not run on the input: unknown


def test_run_estimate_counts_training_state_and_activations_at_the_batch():
    from workbench.core.data import load_data
    data = load_data({"spec": "fake:1x4x4:3:100", "batch_size": 8, "eval_batch_size": 16})
    stack = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    loaded = LoadedModel(stack, "stack", (1, 4, 4), 3, {})
    weights = (16 * 32 + 32 + 32 * 3 + 3) * 4
    total, largest = (16 + 32 + 32 + 3) * 4, 32 * 4
    assert data.sizes["train"] >= 64 and data.sizes["test"] >= 16
    train = mb.run_estimate(loaded, data, 64).parts
    assert train["weights"] == weights and train["gradients and optimizer state"] == 3 * weights
    assert train["activations (training batch 64)"] == 64 * (total + 2 * largest)
    evaluate = mb.run_estimate(loaded, data).parts             # inspect: no training state
    assert "gradients and optimizer state" not in evaluate
    assert evaluate["activations (eval batch 16)"] == 16 * (4 * 16 + 2 * largest)


def test_data_estimate_follows_image_size_and_eval_batch_within_the_split(digits):
    from workbench.core.data import load_data
    assert mb.data_estimate(digits).parts["data held"] >= 2 * 1797 * 64      # the uint8 images, and their split copies
    est = mb.data_estimate(load_data({"spec": "sample:digits", "image_size": 64, "eval_batch_size": 300})).parts
    assert est["a batch of 300 at 1x64x64"] == 3 * 300 * 64 * 64 * 4
    huge = mb.data_estimate(load_data({"spec": "sample:digits", "image_size": 64, "eval_batch_size": 65536})).parts
    most = max(digits.sizes["val"], digits.sizes["test"])                # no batch is larger than its split
    assert huge[f"a batch of {most} at 1x64x64"] == 3 * most * 64 * 64 * 4


def test_loader_processes_are_bounded_by_cores_and_counted(tmp_path, monkeypatch):
    from workbench.core.data import load_data
    folder = image_folder(tmp_path, {f"c{i % 2}/{i}.png": None for i in range(12)})
    monkeypatch.setattr(mb, "usable_cores", lambda: 2)
    with pytest.raises(BadInput, match=r"data.workers: 3 loader processes \(about 600.\d MB of memory\), but this machine has 2 usable cores"):
        load_data({"spec": f"imagefolder:{folder}", "workers": 3, "image_size": 16})
    data = load_data({"spec": f"imagefolder:{folder}", "workers": 2, "image_size": 16})
    batch = max(data.sizes["train"], data.sizes["calib"])
    assert mb.data_estimate(data).parts["2 loader processes"] == 2 * (200_000_000 + 4 * batch * 3 * 16 * 16 * 4)
    monkeypatch.setenv(mb.ENV, "300M")
    with pytest.raises(BadInput, match=r"2 loader processes 400.\d MB\), more than the memory budget of 300.0 MB"):
        load_data({"spec": f"imagefolder:{folder}", "workers": 2, "image_size": 16})


def test_sample_recipes_and_resnet18_at_224_fit_in_4g(tmp_path, monkeypatch):
    from workbench.core.data import load_data
    from workbench.core.recipe import Recipe
    from workbench.core.run_handle import RunOptions
    from workbench.core.runner import prepare
    from workbench.core.specs import load_model
    monkeypatch.setenv(mb.ENV, "4G")
    for path in sorted((ROOT / "resources" / "recipes").glob("*.yaml")):
        prepare(Recipe.load(str(path)), RunOptions(out_dir=tmp_path / path.stem))     # refused here if over the budget
    data = load_data({"spec": "fake:3x224x224:10:100", "batch_size": 64})
    loaded = load_model("torchvision:resnet18", data.input_shape, data.num_classes)
    estimate = mb.run_estimate(loaded, data, 64)
    assert 1e9 < estimate.total < 4e9, estimate.text()        # about 20 MB of activations a sample: not absurd
    mb.check_run(loaded, data, "resnet18", 64)


_CASES = PEAK_RSS_SOURCE + r"""
import contextlib, io, json, sys
from workbench.cli import main
from workbench.core.run_handle import RunOptions
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        results.append([main(argv), err.getvalue()])
print(json.dumps([results, peak_rss_bytes()]))
"""


def run_measured(cases: list[list[str]], cwd: Path) -> tuple[list, int]:
    """[(exit status, stderr)] of `main(argv)` for each case in one child process, and its peak RSS in bytes
    (peak_rss: the child's own, not the test session's)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([sys.executable, "-c", _CASES, json.dumps(cases)], stdout=out, stderr=err, cwd=cwd)
        out.seek(0), err.seek(0)
        assert proc.returncode == 0, err.read()[-3000:]
        results, peak = json.loads(out.read().decode().strip().splitlines()[-1])
        return results, peak


def _recipe(folder: Path, name: str, model: str, data: str) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(f"model: {model}\ndata: {data}\nstages:\n  - kind: train\n    epochs: 1\n")
    return str(path)


def _weights(spec: str, shape, classes) -> int:
    return count(on_meta(lambda: build_base(spec, shape, classes, check_size=False)[0]))[1]


def test_hostile_sizes_exit_2_with_the_estimate_in_bounded_memory(tmp_path, digits):
    images = image_folder(tmp_path / "images", {f"c{i % 2}/{i}.png": None for i in range(12)})
    eval_batch = max(digits.sizes["val"], digits.sizes["test"])
    cases = {   # argv -> what the one line says
        "wide_mlp": (["inspect", "arch:mlp:hidden=44000-44000"],
                     f"needs about {human_bytes(2 * _weights('arch:mlp:hidden=44000-44000', None, None))} of memory"),
        "2e9_mlp_recipe": (["run", _recipe(tmp_path, "mlp", "arch:mlp:hidden=44000-45000", "sample:digits")],
                           f"weights {human_bytes(_weights('arch:mlp:hidden=44000-45000', (1, 8, 8), 10))}"),
        "image_size_4096": (["run", _recipe(tmp_path, "big", "arch:lenet5", "{spec: sample:digits, image_size: 4096}")],
                            f"a batch of 256 at 1x4096x4096 {human_bytes(3 * 256 * 4096**2 * 4)}"),
        "eval_batch_65536": (["run", _recipe(tmp_path, "eval", "arch:lenet5",
                                             "{spec: sample:digits, image_size: 4096, eval_batch_size: 65536}")],
                             f"a batch of {eval_batch} at 1x4096x4096"),
        "workers_64": (["run", _recipe(tmp_path, "workers", "arch:lenet5", f"{{spec: 'imagefolder:{images}', workers: 64}}")],
                       "64 loader processes"),
        "vit_giant": (["inspect", "timm:vit_giant_patch14_224"], "needs about 8.1 GB of memory (weights 4.1 GB"),
    }
    argvs = [[*argv, *(["--out", str(tmp_path / f"out_{name}")] if argv[0] == "run" else []), "--memory-budget", "2G"]
             for name, (argv, _) in cases.items()]
    results, peak = run_measured(argvs, tmp_path)
    for (name, (_, needle)), (code, stderr) in zip(cases.items(), results):
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("workbench: error: "), (name, stderr)
        assert needle in lines[0], (name, lines[0])
        if name != "workers_64" or "usable cores" not in lines[0]:
            assert "more than the memory budget of 2.0 GB (--memory-budget 2G)" in lines[0], (name, lines[0])
        assert not (tmp_path / f"out_{name}").exists(), name
    assert peak < 1.5e9, f"peak RSS {peak / 1e6:.0f} MB"


def test_the_command_line_refuses_with_exit_2(tmp_path):
    proc = run_cli("inspect", "arch:mlp:hidden=30000-30000", "--memory-budget", "1GiB", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "more than the memory budget of 1.1 GB (--memory-budget 1GiB)" in proc.stderr
    proc = run_cli("run", "deep_compression", "--memory-budget", "lots", cwd=tmp_path)
    assert proc.returncode == 2 and "argument --memory-budget: expected a size such as 8G" in proc.stderr
    env = {**os.environ, mb.ENV: "1M"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "inspect", "arch:mlp:hidden=1000-1000"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 2 and f"({mb.ENV}=1M)" in proc.stderr, proc.stderr
