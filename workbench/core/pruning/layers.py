"""Which layers pruning works on, the final classifier, and per-layer statistics.

A *prunable layer* is a module that owns a `weight` Parameter and is a Linear or a convolution
(`nn.modules.conv._ConvNd`); it is named by its qualified module name (`fc1`, `layer1.0.conv2`).
Sparsity always counts these layers' weights only: biases and batch-norm parameters are neither
pruned nor counted.
"""
from __future__ import annotations

import difflib

import torch
from torch import nn

from ..errors import RecipeError
from ..metrics import layer_table

PRUNABLE_TYPES = (nn.Linear, nn.modules.conv._ConvNd)
Prunable = nn.Linear | nn.modules.conv._ConvNd     # what `prunable_layers` returns: `.weight` is a Tensor


def prunable_layers(model: nn.Module) -> dict[str, Prunable]:
    """Qualified name -> module, in definition order."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, PRUNABLE_TYPES) and isinstance(getattr(m, "weight", None), nn.Parameter)}


def classifier_name(model: nn.Module, example: torch.Tensor) -> str | None:
    """The last prunable layer run in a forward pass whose outputs are the class scores."""
    layers = prunable_layers(model)
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda _m, _i, _o, n=name: order.append(n)) for name, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    classes = out.shape[1] if isinstance(out, torch.Tensor) and out.ndim >= 2 else None
    for name in reversed(order):
        m = layers[name]
        produced = getattr(m, "out_features", None) or getattr(m, "out_channels", None)
        if produced == classes:
            return name
    return order[-1] if order else None


def unknown_layer(name: str, known: list[str]) -> str:
    """Message for a layer name that is not prunable in this model."""
    close = difflib.get_close_matches(name, known, n=2)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    listing = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f"no such layer{hint}; prunable layers: {listing}"


def checked_layers(model: nn.Module, exclude: list[str], path: str, verb: str) -> list[str]:
    """The model's prunable layer names; RecipeError at `path` when it has none to `verb` or `exclude` names
    one it does not have."""
    names = list(prunable_layers(model))
    if not names:
        raise RecipeError(f"{path}: the model has no Linear or convolution layers to {verb}")
    for i, name in enumerate(exclude):
        if name not in names:
            raise RecipeError(f"{path}.exclude[{i}]: {name!r}: {unknown_layer(name, names)}")
    return names


def weight_sparsity(model: nn.Module, names: list[str] | None = None) -> float:
    """Fraction of zero weights over the given prunable layers (all of them by default)."""
    layers = prunable_layers(model)
    total = zeros = 0
    for name in names if names is not None else list(layers):
        w = layers[name].weight.detach()
        total += w.numel()
        zeros += w.numel() - int(torch.count_nonzero(w))
    return zeros / total if total else 0.0


def weight_count(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in prunable_layers(model).values())


def layer_stats(model: nn.Module, original: dict[str, int] | None = None) -> dict[str, dict[str, float | None]]:
    """Per-layer numbers for `LayerStats`: sparsity, params, nonzero_params, kept, weights, nonzero_weights, channels.

    `weights`/`nonzero_weights` count the layer's prunable weights now (0 for other layers), so the fraction of
    zeros among them is the sparsity that `inspect`, snapshots and report.json show. `sparsity` is None for layers
    without prunable weights (batch norm, ...). With `original` (params per layer before pruning), a prunable
    layer's `sparsity` is the fraction of its original parameters that are zero *or removed* (the pruning
    schedule's view, so structured pruning moves it too), and `kept` = params / original params. Without it,
    `sparsity` is the fraction of zeros. `channels` is the first dimension of the layer's weight (outputs).
    Layers without prunable weights are listed only when their parameter count changed.
    """
    out: dict[str, dict[str, float | None]] = {}
    for row in layer_table(model):
        base = (original or {}).get(row.name) or row.params
        if row.sparsity is None and base == row.params:
            continue                      # not a prunable layer, and unchanged: nothing to show
        sparsity = None if row.sparsity is None else 1.0 - row.nonzero_params / base if base else 0.0
        out[row.name] = {"sparsity": sparsity, "params": float(row.params), "nonzero_params": float(row.nonzero_params),
                         "kept": row.params / base if base else 1.0, "weights": float(row.weights),
                         "nonzero_weights": float(row.nonzero_weights),
                         "channels": float(row.shape[0]) if row.shape else None}
    return out


def param_counts(model: nn.Module) -> dict[str, int]:
    return {row.name: row.params for row in layer_table(model)}
