"""Binary and ternary weights with a per-output-channel scale.

binary  (BinaryConnect / XNOR-Net): w_q = sign(w) * alpha_c, alpha_c = mean |w| over channel c's kept weights.
ternary (Ternary Weight Networks): w_q = alpha_c * sign(w) * [|w| > delta_c], delta_c = 0.7 * mean |w_c|,
        alpha_c = mean |w| over the weights above the threshold.
Pruned weights stay zero. Fine-tuning keeps float "latent" weights and passes gradients straight
through the quantizer (see tied.py).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

TERNARY_RATIO = 0.7


def _channel_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel mean of |values| weighted by `weight` (0/1), shaped to broadcast."""
    dims = tuple(range(1, values.ndim))
    total = (values.abs() * weight).sum(dim=dims, keepdim=True) if dims else values.abs() * weight
    count = weight.sum(dim=dims, keepdim=True) if dims else weight
    return total / count.clamp(min=1)


def binarize(w: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    k = keep.to(w.dtype)
    alpha = _channel_mean(w, k)
    sign = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    return sign * alpha * k


def ternarize(w: torch.Tensor, keep: torch.Tensor, ratio: float = TERNARY_RATIO) -> torch.Tensor:
    k = keep.to(w.dtype)
    delta = ratio * _channel_mean(w, k)
    above = (w.abs() > delta).to(w.dtype) * k
    alpha = _channel_mean(w, above)
    return torch.sign(w) * alpha * above


Quantizer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]    # (weight, keep mask) -> quantized weight
QUANTIZERS: dict[str, Quantizer] = {"binary": binarize, "ternary": ternarize}


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, latent: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        return quantized

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def straight_through(latent: torch.Tensor, keep: torch.Tensor, quantizer: Quantizer) -> torch.Tensor:
    """Forward: exactly the quantized weight; backward: the gradient flows to `latent` unchanged."""
    with torch.no_grad():
        quantized = quantizer(latent, keep)
    out: torch.Tensor = _StraightThrough.apply(latent, quantized)
    return out
