"""k-means weight sharing: each layer's kept weights replaced by the nearest of 2^bits shared centroids.

Pruned weights (zero, or masked out in `session.masks`) stay exactly zero and take no part in the
clustering. A layer is represented by its codebook and a `slots` tensor (0 = pruned, 1 + cluster
otherwise), so `weight = cat([0], codebook)[slots]`: the weights are a function of the codebook,
which is what centroid fine-tuning trains.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .kmeans import MAX_ITER, kmeans_1d
from .layers import bits_for, weight_layers


@dataclass
class SharedLayer:
    param: str                 # qualified parameter name, e.g. "fc1.weight"
    bits: int
    codebook: torch.Tensor     # 1-D float32 centroids, ascending
    slots: torch.Tensor        # int64, shape of the weight: 0 = pruned, 1 + index into codebook
    iterations: int = 0

    def weight(self, codebook: torch.Tensor | None = None) -> torch.Tensor:
        cb = self.codebook if codebook is None else codebook
        return torch.cat([cb.new_zeros(1), cb])[self.slots]

    @property
    def kept(self) -> int:
        return int((self.slots > 0).sum())


def share_layer(param: str, weight: torch.Tensor, keep: torch.Tensor, bits: int, init: str,
                seed: int = 0, max_iter: int = MAX_ITER) -> SharedLayer:
    """Cluster the kept entries of one weight into 2^bits centroids (fewer only when fewer distinct values
    are kept): Lloyd to convergence, an empty cluster refilled by splitting the one with the largest error."""
    result = kmeans_1d(weight.detach()[keep], 2 ** bits, init, max_iter=max_iter, seed=seed, split_empty=True)
    slots = torch.zeros(weight.shape, dtype=torch.long, device=weight.device)
    slots[keep] = result.labels.to(weight.device) + 1
    return SharedLayer(param, bits, result.centroids.to(weight.device, torch.float32), slots, result.iterations)


def share_weights(model: nn.Module, masks: dict[str, torch.Tensor], bits: int | dict[str, int], init: str,
                  exclude: list[str] | tuple[str, ...] = (), seed: int = 0, max_iter: int = MAX_ITER) -> dict[str, SharedLayer]:
    """Weight-share every Conv/Linear weight of `model` in place; returns the layers by parameter name."""
    shared: dict[str, SharedLayer] = {}
    for name, module in weight_layers(model, exclude).items():
        param = f"{name}.weight"
        w = module.weight.detach()
        keep = w != 0
        if param in masks and masks[param].shape == w.shape:
            keep &= masks[param].to(w.device, torch.bool)
        layer = share_layer(param, w, keep, bits_for(name, module, bits), init, seed, max_iter)
        with torch.no_grad():
            module.weight.copy_(layer.weight().to(w.dtype))
        shared[param] = layer
    return shared


def round_codebooks(model: nn.Module, shared: dict[str, SharedLayer], dtype: torch.dtype) -> None:
    """Round each codebook to `dtype` (e.g. float16, so the packed file stores 2-byte centroids) and re-tie."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, layer in shared.items():
            layer.codebook = layer.codebook.to(dtype).float()
            params[name].copy_(layer.weight())


def round_biases(layers: Mapping[str, nn.Module], dtype: torch.dtype) -> None:
    """Round the layers' biases to `dtype` values (kept as float32 tensors)."""
    with torch.no_grad():
        for module in layers.values():
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.copy_(bias.to(dtype).float())
