"""How important a weight (unstructured) or a channel (structured) is.

Unstructured scores, one per weight: magnitude |w| (l1 and l2 are the same for one weight),
first-order Taylor |w * dL/dw| with the gradient summed over calibration batches, or random.

Structured criteria are torch-pruning importances over a whole dependency group (a filter and
everything coupled to it): L1 / L2 norm of the group's weights, batch-norm scale |gamma| (network
slimming), first-order Taylor, random, and activation statistics measured on calibration data
(`ActivationImportance`: mean |activation| of a channel, or 1 - APoZ, the fraction of its
activations that are non-zero).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch_pruning as tp
from torch import nn

from ..events import Progress
from .layers import Prunable

if TYPE_CHECKING:
    from ..data.bundle import DataBundle

Batch = tuple[torch.Tensor, torch.Tensor]   # (inputs, labels)

METHODS = ["magnitude", "l1", "l2", "bn_scale", "activation", "taylor", "random"]
UNSTRUCTURED_METHODS = ["magnitude", "l1", "l2", "taylor", "random"]
NEEDS_GRADIENTS = {"taylor"}
NEEDS_ACTIVATIONS = {"activation"}
ACTIVATION_STATS = ["mean", "apoz"]


class CalibrationSession(Protocol):
    """What calibration needs of the stage's session."""

    @property
    def data(self) -> DataBundle: ...
    @property
    def device(self) -> torch.device: ...


def calibration_batches(session: CalibrationSession, n: int) -> list[Batch]:
    batches = []
    for i, (x, y) in enumerate(session.data.calib):
        if i >= n:
            break
        batches.append((x.to(session.device), y.to(session.device)))
    return batches


def accumulate_gradients(model: nn.Module, batches: Sequence[Batch], label: str = "gradients") -> Iterator[Progress]:
    """Sum dL/dw over the batches into `.grad` (model in eval mode: batch-norm statistics untouched)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    for i, (x, y) in enumerate(batches):
        torch.autograd.backward(nn.functional.cross_entropy(model(x), y))   # = loss.backward() (that one is untyped)
        yield Progress(i + 1, len(batches), f"{label} on calibration batch {i + 1}/{len(batches)}")


def weight_scores(method: str, layers: Mapping[str, Prunable], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Per-weight importance of each layer's weight (gradients must be in `.grad` for taylor)."""
    scores = {}
    for name, m in layers.items():
        w = m.weight.detach()
        if method == "random":
            scores[name] = torch.rand(w.shape, generator=generator).to(w.device)
        elif method == "taylor":
            g = m.weight.grad
            scores[name] = (w * g).abs() if g is not None else w.abs()
        else:
            scores[name] = w.abs()
    return scores


class ActivationImportance(tp.importance.GroupMagnitudeImportance):  # type: ignore[misc]  # torch_pruning is untyped
    """Channel importance from the activations that the channel feeds into the next layers.

    `collect(model, batches)` runs calibration batches with hooks on every Linear/Conv input and
    accumulates, per input channel, the mean |activation| (`stat="mean"`) or the fraction of
    non-zero activations (`stat="apoz"`: 1 - average percentage of zeros, Hu et al. 2016). A group's
    importance reduces these over the layers that consume its channels.
    """

    def __init__(self, stat: str = "mean", group_reduction: str = "mean", normalizer: str = "mean") -> None:
        super().__init__(p=1, group_reduction=group_reduction, normalizer=normalizer)
        self.stat = stat
        self.stats: dict[nn.Module, torch.Tensor] = {}
        self.counts: dict[nn.Module, int] = {}

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: object) -> None:
        x = inputs[0].detach()
        if x.ndim < 2:
            return
        if isinstance(module, nn.Linear):
            flat = x.reshape(-1, x.shape[-1])
        else:  # conv: channels on dim 1
            flat = x.transpose(0, 1).reshape(x.shape[1], -1).t()
        value = flat.abs() if self.stat == "mean" else (flat != 0).float()
        self.stats[module] = self.stats.get(module, 0) + value.sum(0)
        self.counts[module] = self.counts.get(module, 0) + flat.shape[0]

    @contextmanager
    def hooks(self, model: nn.Module) -> Iterator[None]:
        handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, tuple(self.target_types))]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def collect(self, model: nn.Module, batches: Sequence[Batch]) -> Iterator[Progress]:
        self.stats, self.counts = {}, {}
        model.eval()
        with self.hooks(model), torch.no_grad():
            for i, (x, _) in enumerate(batches):
                model(x)
                yield Progress(i + 1, len(batches), f"activation statistics, batch {i + 1}/{len(batches)}")

    @torch.no_grad()
    def __call__(self, group: Any) -> torch.Tensor | None:    # a torch_pruning Group
        group_imp, group_idxs = [], []
        for i, (dep, idxs) in enumerate(group):
            layer = dep.target.module
            if dep.handler not in (tp.prune_conv_in_channels, tp.prune_linear_in_channels) or layer not in self.stats:
                continue
            mean = self.stats[layer] / max(1, self.counts[layer])
            idxs = list(idxs)
            if max(idxs) >= len(mean):  # a flattened conv output feeding a Linear: not per channel
                continue
            group_imp.append(mean[idxs])
            group_idxs.append(group[i].root_idxs)
        if not group_imp:
            return None
        scores: torch.Tensor = self._normalize(self._reduce(group_imp, group_idxs), self.normalizer)
        return scores


def structured_importance(method: str, activation_stat: str = "mean") -> Any:
    """The torch-pruning importance criterion for a structured method."""
    if method in ("magnitude", "l1"):
        return tp.importance.GroupMagnitudeImportance(p=1)
    if method == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if method == "bn_scale":
        return tp.importance.BNScaleImportance()
    if method == "taylor":
        return tp.importance.GroupTaylorImportance()
    if method == "random":
        return tp.importance.RandomImportance()
    if method == "activation":
        return ActivationImportance(activation_stat)
    raise ValueError(f"unknown pruning method {method!r}")


def prepare_importance(importance: Any, method: str, model: nn.Module, batches: Sequence[Batch]) -> Iterator[Progress]:
    """Measure what the criterion needs on the current model (gradients, activation statistics)."""
    if method in NEEDS_GRADIENTS:
        yield from accumulate_gradients(model, batches)
    if method in NEEDS_ACTIVATIONS and isinstance(importance, ActivationImportance):
        yield from importance.collect(model, batches)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

