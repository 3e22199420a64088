"""Slimmable networks: one set of weights that runs at several widths (Yu et al. 2019, US-Nets).

At width w every layer keeps its first channels and drops the rest. Training masks the dropped
channels to zero (forward hooks on each layer whose output channels shrink), which computes exactly
what the physically narrower network computes, and sums the losses of all widths at every step (the
sandwich rule). To use a width, `slice_to` removes the trailing channels with torch-pruning (so
residual connections and batch norms stay consistent, and the result is a real, smaller, faster
model recorded as a replayable structured-pruning transform), and `calibrate_bn` recomputes the batch
norms' statistics for it, since each width sees different activations (US-Nets' BN calibration).
The per-layer channel counts come from torch-pruning itself (a trial slice of a copy per width), so
the masks used in training and the sliced model can never disagree.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..pruning import structured


class LeadingChannels(tp.importance.Importance):  # type: ignore[misc]  # torch_pruning is untyped
    """Scores that keep the first channels of every group: channel i scores n - i."""

    def __call__(self, group: Any) -> torch.Tensor:     # a torch_pruning Group
        n = len(group[0][1])
        return torch.arange(n, 0, -1, dtype=torch.float32)


def _pruner(model: nn.Module, example: torch.Tensor, width: float, ignored: list[str]) -> tp.pruner.MetaPruner:
    modules = dict(model.named_modules())
    return structured.make_pruner(model, example, LeadingChannels(), 1.0 - width, "layer", {},
                                  [modules[n] for n in ignored if n in modules], None, 1)


def slice_to(model: nn.Module, example: torch.Tensor, width: float, ignored: list[str]) -> dict[str, Any]:
    """Remove every layer's channels beyond `width` (in place); returns the replayable transform."""
    model.eval()
    pruner = _pruner(model, example, width, ignored)
    with torch.no_grad():
        for _ in structured.step(pruner):
            pass
    return structured.transform(model, tuple(example.shape[1:]), structured.history(pruner))


def out_channels(module: nn.Module) -> int | None:
    if isinstance(module, (nn.Conv2d, nn.Conv1d)):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features
    return None


def plan(model: nn.Module, example: torch.Tensor, widths: Iterable[float], ignored: list[str]) -> dict[float, dict[str, int]]:
    """For each width: {layer name: output channels kept} for the layers that shrink (from a trial slice)."""
    full = {n: c for n, m in model.named_modules() if (c := out_channels(m)) is not None}
    result: dict[float, dict[str, int]] = {}
    for w in widths:
        if w >= 1.0:
            result[w] = {}
            continue
        trial = copy.deepcopy(model)
        slice_to(trial, example, w, ignored)
        kept = {n: out_channels(m) for n, m in trial.named_modules() if n in full}
        result[w] = {n: k for n, k in kept.items() if k is not None and k < full[n]}
    return result


class WidthMasks:
    """While active, layers output zeros beyond their kept channels at the current `width`."""

    def __init__(self, model: nn.Module, widths_plan: dict[float, dict[str, int]]) -> None:
        self.model, self.plan, self.width = model, widths_plan, max(widths_plan)
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> WidthMasks:
        names = {n for kept in self.plan.values() for n in kept}
        modules = dict(self.model.named_modules())
        for name in names:
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str) -> Callable[[nn.Module, Any, torch.Tensor], torch.Tensor]:
        def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
            kept = self.plan[self.width].get(name)
            if kept is None:
                return out
            mask = torch.zeros(out.shape[1], device=out.device, dtype=out.dtype)
            mask[:kept] = 1
            return out * mask.view(1, -1, *([1] * (out.ndim - 2)))
        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


@torch.no_grad()
def calibrate_bn(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device | str) -> int:
    """Recompute every batch norm's running statistics as the exact average over `batches`; returns samples seen."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average instead of an exponential one
    was_training = model.training
    model.train()
    seen = 0
    try:
        for x, _ in batches:
            model(x.to(device))
            seen += len(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)
    return seen
