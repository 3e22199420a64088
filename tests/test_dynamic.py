"""Early exits: where heads go, real exiting, measured compute, the stage's trade-off table, snapshots, errors."""
import json

import pytest
import torch
from prune_helpers import assert_ok, assert_rejected, run_recipe

from workbench.core.dynamic import early_exit as ee
from workbench.core.events import Series
from workbench.core.metrics import flops_per_module
from workbench.core.snapshots import load_snapshot
from workbench.core.specs import load_model


def test_default_exits_and_real_exiting():
    x = torch.randn(1, 1, 8, 8)
    resnet = load_model("sample:digits_resnet").module.eval()
    assert ee.default_exits(resnet, x, 2) == ["layer1", "layer2"]
    mlp = load_model("sample:digits_mlp").module.eval()
    assert ee.default_exits(mlp, x, 2) == ["fc1", "fc2"]
    transform = ee.attach(resnet, x, ["layer1", "layer2"], 10)
    assert [e["features"] for e in transform["exits"]] == [16, 32] and all(e["spatial"] for e in transform["exits"])
    with torch.no_grad():
        plain = resnet(x)
        with ee.Exits(resnet, ["layer1", "layer2"], threshold=0.0) as exits:
            assert exits.run(x)[0] == 0                       # any head is confident enough at threshold 0
        with ee.Exits(resnet, ["layer1", "layer2"], threshold=1.01) as exits:
            index, out = exits.run(x)
            assert index == 2 and torch.equal(out, plain)      # never confident enough: the final classifier
            assert len(exits.outputs) == 2
    assert not any(m._forward_hooks for m in resnet.modules())  # hooks only while active


def test_exit_flops_are_measured_and_grow():
    resnet = load_model("sample:digits_resnet").module.eval()
    x = torch.randn(1, 1, 8, 8)
    ee.attach(resnet, x, ["layer1", "layer2"], 10)
    costs = ee.exit_flops(resnet, ["layer1", "layer2"], x)
    full, _ = flops_per_module(resnet, x)
    assert costs[0] < costs[1] < costs[2] and costs[2] > full   # the last one also paid for both heads
    assert costs[0] < 0.5 * full


def test_stage_reports_the_trade_off_and_snapshots_reload(tmp_path):
    run, events = run_recipe("""
model: sample:digits_resnet
stages:
  - kind: dynamic
    exits: [layer1, layer2]
    thresholds: [0.5, 0.9, 0.99]
    epochs: 3
    lr: 0.01
    train_backbone: false
    latency_samples: 10
""", tmp_path)
    assert_ok(events)
    rows = run.report.data["snapshots"]
    assert rows[1]["accuracy"] == rows[0]["accuracy"]          # backbone frozen: the final exit is unchanged
    result = json.loads((tmp_path / "run" / "early_exit.json").read_text())
    points = result["thresholds"]
    assert [r["threshold"] for r in points] == [0.5, 0.9, 0.99]
    assert all(abs(sum(r["exit_share"]) - 1) < 1e-6 for r in points)
    assert points[0]["expected_mflops"] <= points[1]["expected_mflops"] <= points[2]["expected_mflops"]   # stricter: more compute
    assert points[0]["exit_share"][2] < 1.0                    # some samples really leave early
    assert result["split"] == "val"                             # thresholds are chosen on val; test is reported
    assert result["exit_accuracy"][2] == pytest.approx(rows[0]["val_accuracy"])
    assert all("test_accuracy" in r for r in points)
    series = [e for e in events if isinstance(e, Series)]
    assert series and series[0].x_label.startswith("expected MFLOPs per sample") and len(series[0].x) == 3
    # the simulated accuracy at a threshold is what real, sample-by-sample exiting gives
    snap = load_snapshot(tmp_path / "run" / rows[1]["path"])
    layers = ee.exit_layers(snap.record)
    assert layers == ["layer1", "layer2"]
    model = snap.module.eval()
    correct = n = 0
    with torch.no_grad(), ee.Exits(model, layers, threshold=0.9) as exits:
        for x, y in run.session.data.test:
            for xi, yi in zip(x.split(1), y):
                correct += int(exits.run(xi)[1].argmax(1).item() == yi.item())
                n += 1
    assert correct / n == pytest.approx(points[1]["test_accuracy"])


@pytest.mark.parametrize("model,stage,needle", [
    ("sample:digits_mlp", "{kind: dynamic, exits: [relu]}", "stages[0].exits[0]: 'relu' runs 2 times"),
    ("sample:digits_mlp", "{kind: dynamic, exits: [fc9]}", "stages[0].exits[0]: 'fc9'"),
    ("sample:digits_resnet", "{kind: dynamic, exits: 5}", "stages[0].exits: the model has 2 place(s)"),
    ("sample:digits_resnet", "{kind: dynamic, thresholds: [1.5]}", "stages[0].thresholds[0]"),
    ("sample:digits_resnet", "{kind: dynamic}, {kind: dynamic}", "stages[1].method: the model already has early exits"),
])
def test_bad_settings_are_rejected_before_the_run(tmp_path, model, stage, needle):
    assert_rejected(tmp_path, model, stage, needle)
