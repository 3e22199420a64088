"""Sensitivity analysis: one accuracy curve per layer, the model left as it was."""
import json

import pytest
import torch
from prune_helpers import assert_ok, run_recipe

from workbench.core.events import Series
from workbench.core.run_handle import RunOptions


def test_unstructured_sensitivity_curves(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: sensitivity, sparsities: [0.0, 0.5, 0.99]}
  - {kind: train, epochs: 0}
""", tmp_path)
    assert_ok(events)
    series = {e.name: e for e in events if isinstance(e, Series)}
    assert set(series) == {"sensitivity/fc1", "sensitivity/fc2", "sensitivity/fc3"}
    base = run.report.data["snapshots"][0]["val_accuracy"]     # decisions read val
    for s in series.values():
        assert s.x == (0.0, 0.5, 0.99) and s.x_label == "sparsity" and s.y_label == "accuracy"
        assert s.y[0] == pytest.approx(base)          # nothing pruned: the baseline
        assert all(0.0 <= y <= 1.0 for y in s.y)
        assert s.y[2] < base - 0.05                   # 99% of one layer gone hurts
    # the model is unchanged
    assert run.session.model.fc1.weight.count_nonzero() == run.session.model.fc1.weight.numel()
    assert len(run.report.data["snapshots"]) == 2 and run.report.data["snapshots"][1]["val_accuracy"] == pytest.approx(base)
    table = run.session.extra["sensitivity"]
    assert table["layers"]["fc1"] == list(series["sensitivity/fc1"].y)
    saved = json.loads((run.session.snapshot_paths[-1] / "snapshot.json").read_text())["extra"]["sensitivity"]
    assert saved["layers"]["fc2"] == table["layers"]["fc2"]
    assert json.loads((tmp_path / "run" / "sensitivity.json").read_text())["sparsities"] == [0.0, 0.5, 0.99]


def test_sensitivity_reads_val_not_test(tmp_path):
    """With val labels scrambled and test left alone, the curves follow val: they never saw test."""
    from workbench.core.data import TensorBatches
    from workbench.core.metrics import accuracy
    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.stages import sensitivity
    recipe = Recipe.from_text("model: sample:digits_mlp\nstages: [{kind: sensitivity, sparsities: [0.0], layers: [fc1]}]")
    session = prepare(recipe, RunOptions(out_dir=tmp_path))
    val = session.data.val
    scrambled = TensorBatches(val.x, (val.y + 1) % 10, val.batch_size, transform=val.transform)
    session.data._cache["val"] = scrambled
    series = {e.name: e for e in sensitivity.run(session, recipe.stages[0].params) if isinstance(e, Series)}
    on_val, on_test = accuracy(session.model, scrambled), accuracy(session.model, session.data.test)
    assert on_val < 0.2 < 0.9 < on_test
    assert series["sensitivity/fc1"].y[0] == pytest.approx(on_val)


def test_structured_sensitivity(tmp_path):
    from workbench.core.metrics import accuracy
    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.stages import sensitivity
    recipe = Recipe.from_text("""
model: sample:digits_resnet
stages:
  - {kind: sensitivity, structured: true, sparsities: [0.9], layers: [conv1, layer3.0.conv1]}
""")
    session = prepare(recipe, RunOptions(out_dir=tmp_path))
    series = {e.name: e for e in sensitivity.run(session, recipe.stages[0].params) if isinstance(e, Series)}
    assert set(series) == {"sensitivity/conv1", "sensitivity/layer3.0.conv1"}
    assert all(len(s.y) == 1 for s in series.values())
    assert session.model.conv1.out_channels == 16      # pruned on copies only
    assert series["sensitivity/conv1"].y[0] < accuracy(session.model, session.data.val) - 0.1


def test_structured_default_layers_skip_the_classifier(tmp_path):
    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.stages import sensitivity
    recipe = Recipe.from_text("model: sample:digits_mlp\nstages: [{kind: sensitivity, structured: true, sparsities: [0.5]}]")
    session = prepare(recipe, RunOptions(out_dir=tmp_path))
    names = [e.name for e in sensitivity.run(session, recipe.stages[0].params) if isinstance(e, Series)]
    assert names == ["sensitivity/fc1", "sensitivity/fc2"]
    assert torch.equal(torch.tensor(session.model.fc1.weight.shape), torch.tensor([300, 64]))
