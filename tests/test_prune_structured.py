"""Structured pruning: channels physically removed, FLOPs and params fall, snapshots reload identically."""
import pytest
import torch
from prune_helpers import assert_ok, run_recipe

from workbench.core.metrics import count_params, flops_per_module
from workbench.core.pruning import importance, structured
from workbench.core.pruning.layers import classifier_name
from workbench.core.run_handle import RunOptions
from workbench.core.snapshots import load_snapshot
from workbench.core.specs import load_model


def _conv_flops(model, x):
    _, per_module = flops_per_module(model, x)
    return sum(v for k, v in per_module.items() if "conv" in k or "downsample.0" in k)


def test_resnet18_half_the_channels():
    loaded = load_model("torchvision:resnet18", (3, 64, 64), 10)
    model, x = loaded.module.eval(), torch.randn(2, 3, 64, 64)
    params0, flops0, conv0 = count_params(model)[0], flops_per_module(model, x[:1])[0], _conv_flops(model, x[:1])
    assert classifier_name(model, x[:1]) == "fc"
    pruner = structured.make_pruner(model, x[:1], importance.structured_importance("l1"), 0.5, "layer", {},
                                    [model.fc], None, 1)
    for _ in structured.step(pruner):
        pass
    assert model(x).shape == (2, 10)
    assert model.fc.out_features == 10 and model.fc.in_features == 256
    assert model.layer1[0].conv1.out_channels == 32
    params1, flops1, conv1 = count_params(model)[0], flops_per_module(model, x[:1])[0], _conv_flops(model, x[:1])
    assert 3.5 < params0 / params1 < 4.1           # both in and out channels halved (fc outputs kept)
    assert 3.5 < conv0 / conv1 < 4.1               # conv MACs ~ C_in * C_out: ~4x fewer (stem keeps its 3 inputs)
    assert 3.5 < flops0 / flops1 < 4.1
    # the recorded history replays onto a fresh resnet18
    t = structured.transform(model, (3, 64, 64), structured.history(pruner))
    fresh = load_model("torchvision:resnet18", (3, 64, 64), 10).module
    structured.replay(fresh, t)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    assert torch.equal(fresh(x), model(x))


def test_digits_resnet_structured_run_and_snapshot_round_trip(tmp_path):
    run, events = run_recipe("""
model: sample:digits_resnet
stages:
  - {kind: prune, method: l1, structured: true, scope: layer, sparsity: 0.5, finetune_epochs: 1}
""", tmp_path)
    assert_ok(events)
    base, pruned = run.report.data["snapshots"]
    assert 3.0 < base["params"] / pruned["params"] < 4.2
    assert 3.0 < base["flops"] / pruned["flops"] < 4.2
    assert pruned["accuracy"] > 0.5
    model = run.session.model.eval()
    assert model.conv1.out_channels == 8 and model.fc.out_features == 10
    record = run.session.record["transforms"][-1]
    assert record["op"] == "structured_prune" and record["history"]
    reloaded = load_snapshot(run.session.snapshot_paths[-1]).module.eval()
    x = run.session.example_input(8)
    with torch.no_grad():
        assert torch.equal(reloaded(x), model(x))
    assert reloaded(x).shape == (8, 10)


@pytest.mark.parametrize("method,extra", [("bn_scale", ""), ("activation", "activation_stat: apoz"),
                                          ("activation", ""), ("taylor", ""), ("random", ""), ("l2", "scope: global")])
def test_every_structured_criterion_shrinks_the_model(tmp_path, method, extra):
    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.stages import prune
    recipe = Recipe.from_text(f"""
model: sample:digits_resnet
stages:
  - {{kind: prune, method: {method}, structured: true, sparsity: 0.3, finetune_epochs: 0, {extra}}}
""")
    session = prepare(recipe, RunOptions(out_dir=tmp_path))
    session.stage_index = 0
    params0 = count_params(session.model)[0]
    list(prune.run(session, recipe.stages[0].params))
    params1 = count_params(session.model)[0]
    assert params1 < 0.8 * params0
    assert session.model(session.example_input(2)).shape == (2, 10)
    assert session.record["transforms"][-1]["op"] == "structured_prune"


def test_overrides_and_exclusions_structured(tmp_path):
    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.stages import prune
    recipe = Recipe.from_text("""
model: sample:digits_resnet
stages:
  - {kind: prune, method: l1, structured: true, scope: layer, sparsity: 0.25, finetune_epochs: 0,
     exclude: [layer1.0.conv1], overrides: {layer2.0.conv1: 0.75}}
""")
    session = prepare(recipe, RunOptions(out_dir=tmp_path))
    session.stage_index = 0
    list(prune.run(session, recipe.stages[0].params))
    m = session.model
    assert m.layer1[0].conv1.out_channels == 16      # excluded
    assert m.layer2[0].conv1.out_channels == 8       # 32 * (1 - 0.75)
    assert m.layer3[0].conv1.out_channels == 48      # 64 * (1 - 0.25)


def test_vision_transformer_hidden_size_follows_the_pruned_patch_embedding():
    from torchvision.models import VisionTransformer

    def tiny():
        torch.manual_seed(0)
        return VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                                 mlp_dim=32, num_classes=10).eval()
    model, x = tiny(), torch.randn(2, 3, 32, 32)
    t = structured.prune_once(model, x[:1], 0.5)
    assert model.conv_proj.out_channels == 8 and model.hidden_dim == 8
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 10)
    fresh = structured.replay(tiny(), t)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh(x), out)


def test_layer_stats_show_removed_channels_as_sparsity():
    from workbench.core.pruning.layers import layer_stats, param_counts
    model = load_model("arch:mlp:hidden=32-16", (1, 8, 8), 10).module.eval()
    original = param_counts(model)
    structured.prune_once(model, torch.randn(1, 1, 8, 8), 0.5)
    stats = layer_stats(model, original)
    assert stats["fc1"]["params"] == 16 * 64 + 16 and stats["fc1"]["kept"] == pytest.approx(0.5)
    assert stats["fc1"]["sparsity"] == pytest.approx(0.5)
    assert stats["fc3"]["params"] == 10 * 8 + 10     # outputs kept, inputs halved
