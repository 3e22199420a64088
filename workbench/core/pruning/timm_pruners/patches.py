"""Forwards rewritten for tracing (ReXNet, DPN): slices and paddings as kept ops, checked against timm's own."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol, cast

import torch
from torch import nn

from .standins import KeptOp


def _kept_fn(fn: Callable[[torch.Tensor], torch.Tensor]) -> KeptOp:
    return KeptOp(fn)   # a function as the target: no layers inside, one node, nothing removed


def _rexnet_forward(self: Any, x: torch.Tensor) -> torch.Tensor:     # self: timm's LinearBottleneck, `_wb_pad` added
    """ReXNet LinearBottleneck with its partial residual `cat([x[:, :in] + shortcut, x[:, in:]])` written as
    `x + pad(shortcut)` (the same values), the zero-padding a kept op: torch-pruning's group search over the
    slice and concatenation runs for minutes; this way the trunk stays and the expansion is pruned."""
    shortcut = x
    if self.conv_exp is not None:
        x = self.conv_exp(x)
    x = self.conv_dw(x)
    if self.se is not None:
        x = self.se(x)
    x = self.act_dw(x)
    x = self.conv_pwl(x)
    if self.drop_path is not None:
        x = self.drop_path(x)
    self._wb_pad.target.width = int(x.shape[1])
    padded: torch.Tensor = self._wb_pad(shortcut)
    return x + padded


class _PadChannels:
    """Zero-pads dim 1 up to `width` (set by the caller before each use)."""
    width = 0

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(t, (0, 0, 0, 0, 0, self.width - t.shape[1]))


def _rexnet_patch(m: nn.Module) -> dict[str, nn.Module] | None:
    return {"_wb_pad": _kept_fn(_PadChannels())} if m.use_shortcut else None


def _dpn_forward(self: Any, x: torch.Tensor) -> torch.Tensor:     # self: timm's DualPathBlock, the `_wb_*` ops added
    """DPN DualPathBlock with its channel slices (`x[:, :num_1x1_c]`, `x[:, num_1x1_c:]`) as kept ops: torch-pruning
    cannot size slices by a count held in an attribute (TypeError in its concat index mapping). The dual-path
    trunk stays; each block's bottleneck (1x1 -> grouped 3x3) is pruned."""
    if self.c1x1_w_s1 is not None:
        x_s = self.c1x1_w_s1(x)
    elif self.c1x1_w_s2 is not None:
        x_s = self.c1x1_w_s2(x)
    else:
        x_s = x
    x_s1, x_s2 = self._wb_s1(x_s), self._wb_s2(x_s)
    x = self.c1x1_c(self.c3x3_b(self.c1x1_a(x)))
    if self.c1x1_c1 is not None and self.c1x1_c2 is not None:
        out1, out2 = self.c1x1_c1(x), self.c1x1_c2(x)
    else:
        out1, out2 = self._wb_c1(x), self._wb_c2(x)
    return torch.cat([x_s1 + out1, x_s2, out2], dim=1)


class _DualPathBlock(Protocol):     # what `_dpn_patch` reads of timm's DualPathBlock
    num_1x1_c: int


def _dpn_patch(m: nn.Module) -> dict[str, nn.Module]:
    n = int(cast(_DualPathBlock, m).num_1x1_c)
    return {"_wb_s1": _kept_fn(lambda t: t[:, :n]), "_wb_s2": _kept_fn(lambda t: t[:, n:]),
            "_wb_c1": _kept_fn(lambda t: t[:, :n]), "_wb_c2": _kept_fn(lambda t: t[:, n:])}


Forward = Callable[[Any, torch.Tensor], torch.Tensor]    # (the module, its input) -> its output

# class -> (forward used while tracing, the kept ops it calls (None: leave this instance alone))
PATCHED: dict[str, tuple[Forward, Callable[[nn.Module], dict[str, nn.Module] | None]]] = {
    "timm.models.rexnet.LinearBottleneck": (_rexnet_forward, _rexnet_patch),
    "timm.models.dpn.DualPathBlock": (_dpn_forward, _dpn_patch),
}


def _unhooked_copy(module: nn.Module) -> nn.Module:
    clone = copy.deepcopy(module)
    for m in clone.modules():
        for name, value in vars(m).items():
            if name.startswith(("_forward", "_backward")) and isinstance(value, dict):
                value.clear()
    return clone


def _checked(module: nn.Module, forward: Forward) -> Callable[[torch.Tensor], torch.Tensor]:
    """`forward` as `module`'s forward, checked (once per module) against the class's own forward, so that a
    timm version whose block computes something else fails loudly instead of tracing the wrong graph."""
    checked: list[bool] = []

    def run(x: torch.Tensor) -> torch.Tensor:
        out = forward(module, x)
        if not checked:
            with torch.no_grad():
                expected = type(module).forward(_unhooked_copy(module), x)   # torch-pruning's hooks see nothing
            if expected.shape != out.shape or not torch.allclose(expected, out.detach(), rtol=1e-4, atol=1e-5):
                raise RuntimeError(f"{type(module).__qualname__}: timm's forward differs from the one torch-pruning "
                                   f"traces here (workbench/core/pruning/timm_pruners/patches.py); this timm version is not "
                                   f"supported for structured pruning of this model")
            checked.append(True)
        return out
    return run
