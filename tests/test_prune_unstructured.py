"""Unstructured pruning: thresholds hit their targets, overrides and exclusions hold, masks survive training."""
import pytest
import torch
from prune_helpers import assert_ok, run_recipe, session_for

from workbench.core.pruning import schedule, unstructured
from workbench.core.pruning.importance import weight_scores
from workbench.core.pruning.layers import classifier_name, prunable_layers, weight_sparsity
from workbench.core.recipe import new_stage
from workbench.core.stages import prune


def _prune(session, **settings):
    p = new_stage("prune", **settings).params
    prune.preflight(session, p)
    events = list(prune.run(session, p))
    return p, events


def _layer_sparsity(model, name):
    w = prunable_layers(model)[name].weight
    return 1.0 - int(w.count_nonzero()) / w.numel()


@pytest.mark.parametrize("spec", ["sample:digits_mlp", "sample:digits_resnet"])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_thresholds_hit_the_requested_sparsity(spec, scope):
    session = session_for(spec)
    _prune(session, sparsity=0.8, scope=scope, classifier_scale=1.0, finetune_epochs=0)
    layers = prunable_layers(session.model)
    assert abs(weight_sparsity(session.model) - 0.8) < 0.005
    per_layer = [_layer_sparsity(session.model, n) for n in layers]
    if scope == "layer":
        assert all(abs(s - 0.8) < 0.005 for s in per_layer), per_layer
    else:  # one threshold: layers end up with different sparsities
        assert max(per_layer) - min(per_layer) > 0.05
    # masks agree with the zeros (the trained weights have no exact zeros of their own)
    for name, m in layers.items():
        assert torch.equal(session.masks[f"{name}.weight"], m.weight != 0), name


def test_classifier_kept_denser_by_default():
    session = session_for("sample:digits_mlp")
    p, _ = _prune(session, sparsity=0.9, finetune_epochs=0)
    assert p.classifier_scale == 0.5
    assert classifier_name(session.model, session.example_input(1)) == "fc3"
    assert abs(_layer_sparsity(session.model, "fc3") - 0.45) < 0.005
    # the global threshold compensates for the spared classifier: the whole model meets the target
    assert abs(weight_sparsity(session.model) - 0.9) < 0.001
    assert weight_sparsity(session.model, ["fc1", "fc2"]) > 0.9


def test_overrides_and_exclusions():
    session = session_for("sample:digits_mlp")
    before = prunable_layers(session.model)["fc2"].weight.detach().clone()
    _prune(session, sparsity=0.7, scope="global", overrides={"fc1": 0.95}, exclude=["fc2"], finetune_epochs=0)
    assert abs(_layer_sparsity(session.model, "fc1") - 0.95) < 0.005
    assert torch.equal(prunable_layers(session.model)["fc2"].weight, before)
    assert "fc2.weight" not in session.masks
    assert abs(_layer_sparsity(session.model, "fc3") - 0.35) < 0.005


def test_pruned_weights_stay_pruned_across_steps():
    layers = {"a": torch.nn.Linear(10, 10)}
    scores = {"a": torch.rand(10, 10)}
    first = unstructured.compute_masks(layers, scores, unstructured.Plan(fixed={"a": 0.5}), {})
    second = unstructured.compute_masks(layers, {"a": torch.rand(10, 10)}, unstructured.Plan(fixed={"a": 0.7}), first)
    assert int((~second["a.weight"]).sum()) == 70
    assert not bool((second["a.weight"] & ~first["a.weight"]).any())  # nothing revived


def test_masks_stay_zero_through_finetuning_and_training(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: prune, sparsity: 0.8, finetune_epochs: 2, lr: 0.01}
  - {kind: train, epochs: 2, lr: 0.01}
""", tmp_path)
    assert_ok(events)
    model, masks = run.session.model, run.session.masks
    assert set(masks) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    for name, p in model.named_parameters():
        if name in masks:
            assert int(p[~masks[name]].count_nonzero()) == 0
            assert int(p[masks[name]].count_nonzero()) > 0.95 * int(masks[name].sum())
    rows = run.report.data["snapshots"]
    assert rows[1]["sparsity"] == pytest.approx(rows[2]["sparsity"], abs=1e-9) and rows[1]["sparsity"] > 0.7


def test_gradual_schedule_matches_zhu_gupta():
    sf, si, n = 0.9, 0.1, 5
    values = schedule.targets("gradual", sf, n, si)
    for t, v in enumerate(values, start=1):
        assert v == pytest.approx(sf + (si - sf) * (1 - t / n) ** 3)
    assert values[-1] == sf and all(a < b for a, b in zip(values, values[1:]))
    iterative = schedule.targets("iterative", 0.9, 3)
    assert iterative == pytest.approx([1 - 0.1 ** (1 / 3), 1 - 0.1 ** (2 / 3), 0.9])
    assert schedule.targets("oneshot", 0.5, 7) == [0.5]


def test_gradual_stage_reports_each_step(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: prune, sparsity: 0.8, schedule: gradual, steps: 4, finetune_epochs: 0, classifier_scale: 1.0}
""", tmp_path)
    assert_ok(events)
    sparsity = [e.value for e in events if getattr(e, "name", "") == "prune/sparsity"]
    assert sparsity == pytest.approx(schedule.targets("gradual", 0.8, 4), abs=0.005)
    stats = [e for e in events if type(e).__name__ == "LayerStats"]
    assert len(stats) >= 4 and set(stats[-1].layers) >= {"fc1", "fc2", "fc3"}
    assert stats[-1].layers["fc1"]["nonzero_params"] < stats[0].layers["fc1"]["nonzero_params"]


def test_iterative_pruning_keeps_accuracy(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: prune, sparsity: 0.8, schedule: iterative, steps: 3, finetune_epochs: 2, lr: 0.0005}
""", tmp_path)
    assert_ok(events)
    base, final = run.report.data["snapshots"][0], run.report.data["snapshots"][1]
    assert final["sparsity"] > 0.75
    assert final["accuracy"] >= base["accuracy"] - 0.02, (base["accuracy"], final["accuracy"])


def test_taylor_and_random_scores():
    session = session_for("sample:digits_mlp")
    _prune(session, method="taylor", sparsity=0.5, scope="layer", classifier_scale=1.0, finetune_epochs=0)
    assert abs(weight_sparsity(session.model) - 0.5) < 0.005
    layers = prunable_layers(session_for("sample:digits_mlp").model)
    g = torch.Generator().manual_seed(0)
    scores = weight_scores("random", layers, g)
    assert all(scores[n].shape == m.weight.shape for n, m in layers.items())
