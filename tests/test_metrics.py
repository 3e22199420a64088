"""Metrics against hand-computed values on tiny models."""
import torch
from torch import nn

from workbench.core import metrics


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, bias=False)   # 18 weights, on 4x4 -> 2x2 output
        self.fc = nn.Linear(8, 3)                     # 24 weights + 3 biases

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def make_tiny():
    m = Tiny()
    with torch.no_grad():
        m.conv.weight.fill_(1.0)
        m.conv.weight[0, 0, 0, :] = 0.0               # 3 zeros
        m.fc.weight.fill_(0.5)
        m.fc.weight[:, :4] = 0.0                      # 12 zeros
        m.fc.bias.zero_()                             # 3 zeros
    return m


def test_params_nonzeros_sparsity_per_layer():
    rows = {r.name: r for r in metrics.layer_table(make_tiny(), torch.randn(1, 1, 4, 4))}
    assert list(rows) == ["conv", "fc"]
    assert rows["conv"].params == 18 and rows["conv"].nonzero_params == 15
    assert rows["conv"].shape == [2, 1, 3, 3] and rows["conv"].type == "Conv2d"
    assert abs(rows["conv"].sparsity - 3 / 18) < 1e-9
    assert rows["fc"].params == 27 and rows["fc"].nonzero_params == 12
    assert rows["fc"].sparsity == 12 / 24                 # the weight's zeros: biases are not counted


def test_sparsity_counts_prunable_weights_only():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))
    rows = {r.name: r for r in metrics.layer_table(model, torch.randn(1, 1, 4, 4))}
    assert rows["1"].sparsity is None and rows["1"].weights == 0    # batch norm: zero biases are no sparsity
    summary = metrics.summarize(rows.values())
    assert summary["sparsity"] == 0.0 and summary["weights"] == 36 + 32
    assert summary["nonzero_params"] < summary["params"]             # the batch-norm biases are zero


def test_flops_match_hand_count():
    m = make_tiny()
    total, per = metrics.flops_per_module(m, torch.randn(1, 1, 4, 4))
    conv = 2 * (2 * 2) * 2 * (1 * 3 * 3)   # 2 * outputs(HxWxC) * kernel MACs = 144
    fc = 2 * 8 * 3                           # 48
    assert per["conv"] == conv and per["fc"] == fc
    assert total == conv + fc


def test_summary_and_dense_bytes():
    rows = metrics.layer_table(make_tiny(), torch.randn(1, 1, 4, 4))
    s = metrics.summarize(rows)
    assert s["params"] == 45 and s["nonzero_params"] == 27
    assert s["dense_bytes"] == 45 * 4
    assert abs(s["sparsity"] - 15 / 42) < 1e-12 and s["weights"] == 42 and s["nonzero_weights"] == 27
    assert metrics.count_params(make_tiny()) == (45, 27)


def test_accuracy_on_known_predictions():
    m = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    assert metrics.accuracy(m, [(x[:2], y[:2]), (x[2:], y[2:])]) == 0.75


class Sleeper(nn.Module):
    """Takes at least 10 ms per call, and counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        import time
        self.calls += 1
        time.sleep(0.01)
        return x


def test_latency_times_real_forward_passes_after_warmup():
    m = Sleeper()
    ms = metrics.latency_ms(m, torch.randn(1, 4), warmup=2, repeats=5)
    assert ms >= 10.0                         # a lower bound only: a loaded machine may be slower
    assert m.calls == 2 + 5


def test_resnet50_totals():
    from workbench.core.inspection import inspect
    info = inspect("torchvision:resnet50")
    assert info["total"]["params"] == 25_557_032
    assert 7.5e9 < info["total"]["flops"] < 8.5e9   # ~4.1 GMACs at 224x224
    assert info["layers"][0]["name"] == "conv1" and info["layers"][0]["flops"] > 0
