"""Low-rank factorisation, depthwise separable replacement and batch-norm folding: maths, stage, snapshots, errors."""
import pytest
import torch
from prune_helpers import assert_ok, assert_rejected, run_recipe
from torch import nn

from workbench.core.restructure import depthwise, fold_bn, lowrank
from workbench.core.snapshots import load_snapshot


def test_lowrank_is_the_best_rank_r_approximation():
    torch.manual_seed(0)
    layer = nn.Linear(40, 30)
    x = torch.randn(7, 40)
    full, err = lowrank.factorise(layer, 30)
    assert err < 1e-5 and torch.allclose(full(x), layer(x), atol=1e-4)
    pair, err = lowrank.factorise(layer, 8)
    s = torch.linalg.svdvals(layer.weight.detach())
    assert err == pytest.approx(float(s[8:].norm() / s.norm()), rel=1e-4)           # Eckart-Young
    w8 = (pair[1].weight @ pair[0].weight).detach()
    assert float((w8 - layer.weight.detach()).norm() / layer.weight.detach().norm()) == pytest.approx(err, rel=1e-4)
    assert sum(t.numel() for t in pair.parameters()) == lowrank.params_after(layer, 8) == 8 * (40 + 30) + 30


def test_lowrank_convolution_and_energy():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 12, 3, stride=2, padding=1)
    x = torch.randn(2, 6, 9, 9)
    pair, err = lowrank.factorise(conv, lowrank.full_rank(conv))
    assert err < 1e-5 and torch.allclose(pair(x), conv(x), atol=1e-4)
    assert pair[0].kernel_size == (3, 3) and pair[0].stride == (2, 2) and pair[1].kernel_size == (1, 1)
    s2 = torch.linalg.svdvals(lowrank.matrix(conv)).pow(2)
    r = lowrank.rank_for(conv, None, 0.8)
    kept = torch.cumsum(s2, 0) / s2.sum()
    assert kept[r - 1] >= 0.8 and (r == 1 or kept[r - 2] < 0.8)                       # the smallest such rank
    assert lowrank.rank_for(conv, 0.5, None) == 6 and lowrank.rank_for(conv, 4, None) == 4


def test_depthwise_is_exact_for_separable_filters():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3, padding=1)
    with torch.no_grad():   # W[o, c] = a[o, c] * d_c: every input channel's filters share one 3x3 pattern
        a, d = torch.randn(8, 4), torch.randn(4, 3, 3)
        conv.weight.copy_(a[:, :, None, None] * d[None])
    pair, err = depthwise.separate(conv)
    x = torch.randn(2, 4, 10, 10)
    assert err < 1e-5 and torch.allclose(pair(x), conv(x), atol=1e-4)
    assert pair[0].groups == 4 and sum(t.numel() for t in pair.parameters()) == 4 * 9 + 4 * 8 + 8
    assert depthwise.cost_ratio(conv) == pytest.approx(1 / 8 + 1 / 9)
    nn.init.normal_(conv.weight)
    assert 0.1 < depthwise.separate(conv)[1] < 1.0                                       # general filters: approximate


def test_fold_bn_keeps_outputs_and_skips_shared_convolutions():
    from workbench.core.specs import load_model
    model = load_model("sample:digits_resnet").module.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
    pairs = fold_bn.find_pairs(model)
    assert len(pairs) == 9 and ("conv1", "bn1") in pairs and ("layer3.0.shortcut.0", "layer3.0.shortcut.1") in pairs
    fold_bn.fold(model, pairs)
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y          # the convolution's output is used twice: folding would change it
    assert fold_bn.find_pairs(Shared()) == []


@pytest.mark.parametrize("settings,check", [
    ("method: lowrank\n    rank: 0.25\n    finetune_epochs: 1", lambda r: r[1]["params"] < 0.4 * r[0]["params"] and r[1]["flops"] < r[0]["flops"]),
    ("method: depthwise\n    finetune_epochs: 1", lambda r: r[1]["params"] < 0.25 * r[0]["params"] and r[1]["flops"] < 0.3 * r[0]["flops"]),
    ("method: fold_bn", lambda r: r[1]["accuracy"] == r[0]["accuracy"] and r[1]["params"] < r[0]["params"]),
])
def test_stage_shrinks_the_model_and_snapshots_replay(tmp_path, settings, check):
    run, events = run_recipe(f"""
model: sample:digits_resnet
stages:
  - kind: restructure
    {settings}
""", tmp_path)
    assert_ok(events)
    rows = run.report.data["snapshots"]
    assert check(rows), rows
    snap = load_snapshot(tmp_path / "run" / rows[1]["path"])    # rebuilt from the record, weights loaded
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(snap.module.eval()(x), run.session.model.eval()(x))
    assert snap.record["transforms"][-1]["op"] == settings.split()[1]


def test_layers_pick_what_changes(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - kind: restructure
    method: lowrank
    rank: 10
    layers: [fc2]
""", tmp_path)
    assert_ok(events)
    model = run.session.model
    assert isinstance(model.fc1, nn.Linear) and isinstance(model.fc2, nn.Sequential)
    assert model.fc2[0].out_features == 10


@pytest.mark.parametrize("model,stage,needle", [
    ("sample:digits_mlp", "{kind: restructure, method: fold_bn}", "stages[0].method: the model has no convolution followed"),
    ("sample:digits_mlp", "{kind: restructure, method: depthwise}", "stages[0].layers: the model has no layer"),
    ("sample:digits_resnet", "{kind: restructure, layers: [bn1]}", "stages[0].layers[0]: 'bn1' is a BatchNorm2d"),
    ("sample:digits_resnet", "{kind: restructure, layers: [conv9]}", "stages[0].layers[0]: 'conv9'"),
    ("sample:digits_resnet", "{kind: restructure, rank: 0}", "stages[0].rank"),
    ("sample:digits_resnet", "{kind: restructure, rank: 1.5}", "stages[0].rank"),
    ("sample:digits_resnet", "{kind: restructure, method: svd}", "stages[0].method"),
])
def test_bad_settings_are_rejected_before_the_run(tmp_path, model, stage, needle):
    assert_rejected(tmp_path, model, stage, needle)
