"""Slimmable widths: masks equal the sliced network, BN calibration, the stage's table and deployed snapshot."""
import copy
import json

import pytest
import torch
from prune_helpers import assert_ok, assert_rejected, run_recipe
from torch import nn

from workbench.core.dynamic import slimmable as slim
from workbench.core.snapshots import load_snapshot
from workbench.core.specs import load_model


@pytest.mark.parametrize("spec,classifier", [("sample:digits_resnet", "fc"), ("sample:digits_mlp", "fc3")])
def test_masked_network_computes_what_the_sliced_one_does(spec, classifier):
    model = load_model(spec).module.eval()
    x = torch.randn(6, 1, 8, 8)
    plan = slim.plan(model, x[:1], [0.25, 0.5, 1.0], [classifier])
    assert plan[1.0] == {} and classifier not in plan[0.5]
    for width in (0.25, 0.5):
        sliced = copy.deepcopy(model)
        slim.slice_to(sliced, x[:1], width, [classifier])
        kept = {n: slim.out_channels(m) for n, m in sliced.named_modules() if n in plan[width]}
        assert kept == plan[width]                                # the plan is what torch-pruning keeps
        with torch.no_grad(), slim.WidthMasks(model, plan) as masks:
            masks.width = width
            assert torch.allclose(model(x), sliced(x), atol=1e-5)
        assert sum(t.numel() for t in sliced.parameters()) < width * 1.3 * sum(t.numel() for t in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


def test_bn_calibration_is_the_exact_average():
    bn = nn.BatchNorm2d(3)
    batches = [(torch.randn(4, 3, 5, 5) * 2 + 1, None), (torch.randn(6, 3, 5, 5), None)]
    assert slim.calibrate_bn(nn.Sequential(bn).eval(), batches, "cpu") == 10
    means = torch.stack([b[0].mean(dim=(0, 2, 3)) for b in batches])
    assert torch.allclose(bn.running_mean, means.mean(0), atol=1e-5)   # average of the batch means
    assert bn.momentum == 0.1 and not bn.training                   # settings and mode restored


def test_stage_trains_every_width_and_deploys_one(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - kind: dynamic
    method: slimmable
    widths: [0.5]
    deploy_width: 0.5
    epochs: 2
""", tmp_path)
    assert_ok(events)
    result = json.loads((tmp_path / "run" / "slimmable.json").read_text())
    rows = {r["width"]: r for r in result["widths"]}
    assert set(rows) == {1.0, 0.5}
    assert rows[0.5]["mflops"] < 0.4 * rows[1.0]["mflops"]         # fc1 halves, fc2 a quarter, fc3 halves: 35%
    assert rows[0.5]["accuracy"] > 0.9 and rows[1.0]["accuracy"] > 0.9
    snap_row = run.report.data["snapshots"][1]
    assert snap_row["params"] == rows[0.5]["params"] and snap_row["accuracy"] == pytest.approx(rows[0.5]["test_accuracy"])
    assert result["split"] == "val" and snap_row["val_accuracy"] == pytest.approx(rows[0.5]["accuracy"])
    snap = load_snapshot(tmp_path / "run" / snap_row["path"])
    assert snap.module.fc1.out_features == 150 and snap.module.fc2.out_features == 50
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(snap.module.eval()(x), run.session.model.eval()(x))


@pytest.mark.parametrize("stage,needle", [
    ("{kind: dynamic, method: slimmable, widths: [0.5], deploy_width: 0.3}", "stages[0].deploy_width: 0.3 is not one"),
    ("{kind: dynamic, method: slimmable, widths: [0]}", "stages[0].widths[0]"),
    ("{kind: dynamic, method: slim}", "stages[0].method"),
])
def test_bad_settings_are_rejected_before_the_run(tmp_path, stage, needle):
    assert_rejected(tmp_path, "sample:digits_mlp", stage, needle)


def test_slimmable_after_early_exits_says_why(tmp_path):
    assert_rejected(tmp_path, "sample:digits_resnet",
                    "{kind: dynamic, exits: 1}, {kind: dynamic, method: slimmable, widths: [0.5]}",
                    "stages[1].method: slimmable widths cannot be trained with early-exit heads attached")
