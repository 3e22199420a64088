"""Low-rank factorisation by truncated SVD.

A Linear (out x in) becomes Linear(in, r) -> Linear(r, out); a k x k convolution (out, in, k, k)
becomes a k x k convolution with r outputs followed by a 1x1 convolution. With W = U S V^T, the
first factor holds sqrt(S_r) V_r^T and the second U_r sqrt(S_r), so W_r = U_r S_r V_r^T is the best
rank-r approximation of W (Eckart-Young). Worth it only while r (in k^2 + out) < out in k^2.
"""
from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from .. import transforms
from .conv import like

OP = "lowrank"
Factorable = nn.Linear | nn.Conv2d      # the layers `eligible` accepts


def eligible(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return min(module.in_features, module.out_features) > 1
    return isinstance(module, nn.Conv2d) and module.groups == 1 and min(module.out_channels,
                                                                        module.in_channels * module.kernel_size[0] * module.kernel_size[1]) > 1


def matrix(module: Factorable) -> torch.Tensor:
    """The layer's weight as a 2-D matrix (out, in * k * k)."""
    return module.weight.detach().reshape(module.weight.shape[0], -1).float()


def full_rank(module: Factorable) -> int:
    return min(matrix(module).shape)


def rank_for(module: Factorable, rank: int | float, energy: float | None) -> int:
    """The rank to keep: `energy` (fraction of sum S^2 retained) when given, else `rank` (int, or fraction of full rank)."""
    full = full_rank(module)
    if energy is not None:
        s2 = torch.linalg.svdvals(matrix(module)).pow(2)
        kept = torch.cumsum(s2, 0) / s2.sum().clamp_min(1e-30)
        return int(min(full, int(torch.searchsorted(kept, torch.tensor(energy, dtype=kept.dtype)).item()) + 1))
    if isinstance(rank, float):
        return max(1, min(full, round(rank * full)))
    return max(1, min(full, int(rank)))


def params_after(module: Factorable, r: int) -> int:
    out, cols = matrix(module).shape
    return r * (cols + out) + (module.bias.numel() if module.bias is not None else 0)


def shell(module: Factorable, r: int) -> nn.Sequential:
    """The factorised pair with the layer's hyper-parameters (untrained)."""
    bias = module.bias is not None
    if isinstance(module, nn.Linear):
        return nn.Sequential(nn.Linear(module.in_features, r, bias=False), nn.Linear(r, module.out_features, bias=bias))
    first = like(module, module.in_channels, r, bias=False)
    return nn.Sequential(first, nn.Conv2d(r, module.out_channels, 1, bias=bias))


def factorise(module: Factorable, r: int) -> tuple[nn.Sequential, float]:
    """The factorised layer and the relative Frobenius error ||W - W_r|| / ||W||."""
    w = matrix(module)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:r].sqrt()
    first_w = (root[:, None] * vh[:r])            # r x (in k k)
    second_w = u[:, :r] * root[None, :]           # out x r
    pair = shell(module, r).to(module.weight.device)
    first, second = cast(Factorable, pair[0]), cast(Factorable, pair[1])
    with torch.no_grad():
        first.weight.copy_(first_w.reshape(first.weight.shape))
        second.weight.copy_(second_w.reshape(second.weight.shape))
        if module.bias is not None and second.bias is not None:
            second.bias.copy_(module.bias)
    error = float(s[r:].pow(2).sum().sqrt() / s.pow(2).sum().sqrt().clamp_min(1e-30))
    return pair, error


def _replay(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    for name, r in t["layers"].items():     # the record names the layers that were factorised
        model.set_submodule(name, shell(cast(Factorable, model.get_submodule(name)), int(r)))
    return model


transforms.register(OP)(_replay)
