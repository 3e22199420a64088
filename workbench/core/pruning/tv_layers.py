"""What the custom pruners of `tv_pruners` use of torchvision's layers (their structure, for the type checker)."""
from __future__ import annotations

from typing import Protocol

from torch import nn


class ShuffleBlock(Protocol):
    """ShuffleNet V2's `InvertedResidual` while traced."""
    stride: int
    branch1: nn.Module
    branch2: nn.Module
    _wb_trunk: nn.ModuleList       # the `TrunkOp`s (first half, second half, shuffle)


class SwinAttention(Protocol):
    """Swin's `ShiftedWindowAttention(V2)`."""
    qkv: nn.Linear
    proj: nn.Linear
    num_heads: int


class MaxVitAttention(Protocol):
    """MaxViT's `RelativePositionalMultiHeadAttention`."""
    to_qkv: nn.Linear
    merge: nn.Linear
    n_heads: int
    head_dim: int


class PatchMerging(Protocol):
    """Swin's `PatchMerging(V2)`."""
    reduction: nn.Linear
    norm: nn.LayerNorm
    dim: int
