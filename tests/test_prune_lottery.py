"""Lottery ticket: surviving weights rewound to their initial (or an early snapshot's) values."""
import torch
from prune_helpers import assert_ok, run_recipe

from workbench.core.run_handle import RunOptions
from workbench.core.specs import load_model


def test_rewind_to_init_unstructured(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: prune, sparsity: 0.8, rewind: init, finetune_epochs: 0}
""", tmp_path)
    assert_ok(events)
    init = load_model("sample:digits_mlp").init_state
    trained = load_model("sample:digits_mlp").module.state_dict()
    for name, p in run.session.model.named_parameters():
        mask = run.session.masks.get(name)
        kept = mask if mask is not None else torch.ones_like(p, dtype=torch.bool)
        assert torch.equal(p[kept], init[name][kept]), name
        assert not torch.equal(p[kept], trained[name][kept])
        if mask is not None:
            assert int(p[~mask].count_nonzero()) == 0
    # the mask came from the trained weights' magnitudes, not the initial ones
    fc1 = trained["fc1.weight"].abs()
    assert fc1[run.session.masks["fc1.weight"]].mean() > 2 * fc1[~run.session.masks["fc1.weight"]].mean()


def test_rewind_and_retrain_recovers(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: prune, sparsity: 0.8, rewind: init, finetune_epochs: 5, lr: 0.003}
""", tmp_path)
    assert_ok(events)
    rows = run.report.data["snapshots"]
    assert rows[1]["accuracy"] > 0.9 and rows[1]["sparsity"] > 0.7


def test_rewind_structured_to_init(tmp_path):
    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.stages import prune
    recipe = Recipe.from_text("""
model: sample:digits_resnet
stages:
  - {kind: prune, method: l1, structured: true, scope: layer, sparsity: 0.5, rewind: init, finetune_epochs: 0}
""")
    session = prepare(recipe, RunOptions(out_dir=tmp_path))
    session.stage_index = 0
    list(prune.run(session, recipe.stages[0].params))
    init = load_model("sample:digits_resnet").init_state
    model = session.model
    assert model.conv1.weight.shape[0] == 8
    for filt in model.conv1.weight.detach():   # every surviving filter is one of the initial filters
        assert any(torch.equal(filt, f) for f in init["conv1.weight"])
    assert torch.equal(model.fc.bias.detach(), init["fc.bias"])


def test_rewind_to_a_snapshot(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: train, epochs: 1, lr: 0.01}
  - {kind: prune, sparsity: 0.5, rewind: 0, finetune_epochs: 0}
""", tmp_path)
    assert_ok(events)
    baseline = load_model("sample:digits_mlp").module.state_dict()
    mask = run.session.masks["fc1.weight"]
    assert torch.equal(run.session.model.fc1.weight[mask], baseline["fc1.weight"][mask])
