"""Sensitivity analysis: each layer pruned alone, on a copy, and the accuracy measured.

Unstructured: the layer's smallest-magnitude weights are zeroed (then restored).
Structured: the layer's lowest-L1 output channels are removed, with everything coupled to them,
from a copy of the model (torch-pruning dependency graph).
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import nn

from .layers import Prunable
from .unstructured import _keep_mask

Evaluate = Callable[[nn.Module], float]


def unstructured_point(model: nn.Module, layer: Prunable, sparsity: float, evaluate: Evaluate) -> float:
    """Accuracy with `sparsity` of this layer's weights (smallest |w|) zeroed; the weights are restored."""
    saved = layer.weight.detach().clone()
    try:
        keep = _keep_mask(saved.abs(), None, round(sparsity * saved.numel()))
        with torch.no_grad():
            layer.weight.mul_(keep.to(saved.dtype))
        return evaluate(model)
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved)


def structured_point(model: nn.Module, layer_name: str, sparsity: float, example: torch.Tensor,
                     evaluate: Evaluate) -> float:
    """Accuracy of a copy with `sparsity` of this layer's output channels (lowest group L1) removed."""
    trial = copy.deepcopy(model).eval()
    layer = dict(trial.named_modules())[layer_name]
    graph = tp.DependencyGraph().build_dependency(trial, example_inputs=example, verbose=False)
    prune_out = graph.get_pruner_of_module(layer).prune_out_channels
    channels = graph.get_out_channels(layer)
    n_prune = min(round(sparsity * channels), channels - 1)
    if n_prune > 0:
        scores = tp.importance.GroupMagnitudeImportance(p=1)(graph.get_pruning_group(layer, prune_out, list(range(channels))))
        order = torch.argsort(scores.cpu())[:n_prune].tolist() if scores is not None else list(range(n_prune))
        graph.get_pruning_group(layer, prune_out, order).prune()
    return evaluate(trial)
