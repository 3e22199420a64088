"""`OneOp`: a module's forward as a single autograd node, so that torch-pruning's tracer sees one op (the custom
pruners for torchvision and timm layers it cannot follow stand such modules in with it)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class OneOp(torch.autograd.Function):
    """`compute(x)` as a single autograd node whose only input is `x` (its backward is never used)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        out = compute(x)            # autograd is off inside Function.forward: no inner nodes
        return out.clone() if out is x else out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None]:  # pragma: no cover - tracing never backpropagates
        return None, None
