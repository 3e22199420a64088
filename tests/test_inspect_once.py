"""`inspect` without waste (issue 19): FLOPs counted in one forward pass by `metrics.FlopCounter` (the same
counts as torch's FlopCounterMode), non-zeros counted once per tensor, and a freshly built model's initial
weights not copied."""
from __future__ import annotations

import timm
import torch
import torchvision
from torch import nn

from workbench.core import inspection, metrics, models, specs


def reference_counts(model: nn.Module, example: torch.Tensor) -> tuple[int, dict[str, int]]:
    return metrics._flops_by_flop_counter_mode(model.eval(), example)


def test_inspect_counts_flops_once_and_totals_match_flop_counter_mode(monkeypatch):
    entered = []
    real_enter = metrics.FlopCounter.__enter__

    def counting_enter(self):
        entered.append(self.model)
        return real_enter(self)

    monkeypatch.setattr(metrics.FlopCounter, "__enter__", counting_enter)
    info = inspection.inspect("arch:resnet8")
    assert len(entered) == 1                                  # one forward pass under the counter

    model = models.load_builtin("arch:resnet8").module.eval()
    x = torch.randn(1, *info["input_shape"])
    total, per_module = reference_counts(model, x)
    assert info["total"]["flops"] == total > 0
    rows = {r["name"]: r for r in info["layers"]}
    assert {n: r["flops"] for n, r in rows.items()} == {n: per_module.get(n, 0) for n in rows}
    params, nonzero = sum(p.numel() for p in model.parameters()), sum(int(torch.count_nonzero(p)) for p in model.parameters())
    assert (info["total"]["params"], info["total"]["nonzero_params"]) == (params, nonzero)


def test_flop_counter_counts_what_flop_counter_mode_counts():
    torch.manual_seed(0)
    cases = [(torchvision.models.mobilenet_v2(num_classes=10), torch.randn(1, 3, 64, 64)),
             (timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, num_classes=10), torch.randn(1, 3, 32, 32)),
             (torchvision.models.swin_t(num_classes=10), torch.randn(1, 3, 64, 64))]
    for model, x in cases:
        assert metrics.flops_per_module(model, x) == reference_counts(model, x)


class Branchy(nn.Module):
    """torch.cond, a higher-order op: left to FlopCounterMode, which counts the larger branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda t: self.fc(self.fc(t)), lambda t: self.fc(t), (x,))


def test_a_higher_order_op_falls_back_to_flop_counter_mode():
    model, x = Branchy(), torch.ones(2, 8)
    total, _ = metrics.flops_per_module(model, x)
    assert (total, _) == reference_counts(model, x) and total == 2 * 2 * 2 * 8 * 8


def test_count_nonzero_treats_both_zeros_as_zero():
    cases = [torch.tensor([0.0, -0.0, 1.0, -2.0, float("nan")]), torch.zeros(0), torch.tensor(-0.0),
             torch.randn(5, 7).t(), torch.tensor([0, 3, -1]), torch.tensor([0.0, -0.0, 2.0], dtype=torch.float64),
             torch.randn(3, 4) * (torch.rand(3, 4) > 0.5) * -1.0, nn.Parameter(torch.tensor([0.0, 1.0]))]
    for t in cases:
        assert metrics.count_nonzero(t) == int(torch.count_nonzero(t)), t


def test_inspect_does_not_copy_the_initial_weights(monkeypatch):
    seen = []
    real = specs.load_builtin

    def spy(*args, **kwargs):
        loaded = real(*args, **kwargs)
        seen.append(loaded)
        return loaded

    monkeypatch.setattr(specs, "load_builtin", spy)
    inspection.inspect("arch:resnet8")
    assert seen and seen[0].init_state is None
    kept = models.load_builtin("arch:resnet8")           # a run's load keeps them, for a lottery-ticket rewind
    assert kept.init_state is not None
    assert all(torch.equal(kept.init_state[k], v) for k, v in kept.module.state_dict().items())
