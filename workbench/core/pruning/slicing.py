"""Keeping some rows or columns of a layer's weights, in place: what the custom pruners of `tv_pruners` do to the
layers torch-pruning's tracer cannot follow (attention projections, their norms)."""
from __future__ import annotations

import torch
from torch import nn


def keep_indices(n: int, idxs: list[int]) -> torch.Tensor:
    drop = set(idxs)
    return torch.tensor([i for i in range(n) if i not in drop], dtype=torch.long)


def select_linear(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    """Keep `rows` (outputs) and `cols` (inputs) of a linear layer, in place."""
    with torch.no_grad():
        w = linear.weight
        if rows is not None:
            rows = rows.to(w.device)
            w = w.index_select(0, rows)
            if linear.bias is not None:
                linear.bias = nn.Parameter(linear.bias.index_select(0, rows).contiguous(),
                                           requires_grad=linear.bias.requires_grad)
            linear.out_features = w.shape[0]
        if cols is not None:
            w = w.index_select(1, cols.to(w.device))
            linear.in_features = w.shape[1]
        linear.weight = nn.Parameter(w.contiguous(), requires_grad=linear.weight.requires_grad)


def select_norm(norm: nn.Module, keep: torch.Tensor) -> None:
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(norm, name, None)
            if isinstance(p, nn.Parameter):
                setattr(norm, name, nn.Parameter(p.index_select(0, keep.to(p.device)).contiguous(),
                                                 requires_grad=p.requires_grad))
    if isinstance(norm, nn.LayerNorm):
        norm.normalized_shape = (len(keep),)


def stacked(keep: torch.Tensor, width: int, parts: int) -> torch.Tensor:
    """Rows of a projection that stacks `parts` blocks of `width` (q, k, v): `keep` in each block."""
    return torch.cat([keep + k * width for k in range(parts)])
