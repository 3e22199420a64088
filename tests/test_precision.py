"""The GPU training path: precision (fp32 | bf16 | fp16) and channels_last; refused with the reason where slow."""
from __future__ import annotations

import pytest
import torch
from prune_helpers import assert_ok, run_recipe

from workbench.core.errors import BadInput
from workbench.core.precision import cpu_has_fast_bf16
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_fp16_on_a_cpu_is_refused_before_the_run(tmp_path):
    recipe = Recipe.from_text("model: sample:digits_cnn\nprecision: fp16\nstages: [{kind: train, epochs: 1}]\n")
    with pytest.raises(BadInput, match="fp16 training runs on CUDA only"):
        list(Run(recipe, RunOptions(out_dir=tmp_path / "run")).events())
    assert not (tmp_path / "run").exists()


def test_bf16_on_a_cpu_runs_only_where_the_cpu_has_bf16_units(tmp_path):
    recipe = Recipe.from_text("model: sample:digits_cnn\nprecision: bf16\nstages: [{kind: train, epochs: 1}]\n")
    if cpu_has_fast_bf16():
        events = list(Run(recipe, RunOptions(out_dir=tmp_path / "run")).events())
        assert_ok(events)
    else:
        with pytest.raises(BadInput, match="no native bf16 arithmetic"):
            list(Run(recipe, RunOptions(out_dir=tmp_path / "run")).events())


def test_channels_last_fine_tunes_in_nhwc_and_restores_the_layout(tmp_path):
    from workbench.core.precision import Precision
    amp = Precision("fp32", channels_last=True)
    assert amp.inputs(torch.randn(2, 3, 8, 8)).is_contiguous(memory_format=torch.channels_last)
    run, events = run_recipe("model: sample:digits_resnet\nchannels_last: true\n"
                             "stages: [{kind: train, epochs: 1, lr: 0.0005}]\n", tmp_path)
    assert_ok(events)
    assert run.report.data["snapshots"][1]["val_accuracy"] > 0.9
    assert all(p.is_contiguous() for p in run.session.model.parameters())   # back to the default layout afterwards


@CUDA
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_fine_tuning_on_cuda(tmp_path, precision):
    run, events = run_recipe(f"model: sample:digits_resnet\nprecision: {precision}\nchannels_last: true\n"
                             "stages: [{kind: train, epochs: 2, lr: 0.001}]\n", tmp_path, device="cuda")
    assert_ok(events)
    rows = run.report.data["snapshots"]
    assert rows[1]["accuracy"] > 0.9 and run.report.data["environment"]["gpu"]
