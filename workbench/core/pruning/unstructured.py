"""Unstructured pruning: single weights are zeroed and kept at zero by masks.

Targets are fractions of each layer's *weight* tensor (biases and batch-norm parameters are never
pruned). A layer-wise plan prunes every layer to its own target; a global plan ranks the scores of
all "shared" layers together under one threshold while redundant layers give up more. Overridden layers,
and the final classifier (pruned to `classifier_scale` x the target unless that is 1), get their own
layer-wise targets; the global threshold then compensates, so that the target is met over *all* prunable
weights (`sparsity: 0.9, scope: global` ends at 90% of the weights, not 89% because the classifier was
spared). Excluded layers count as dense; when the shared layers cannot make up for them, the plan prunes
them all and the sparsity reached is reported.
Already-masked weights stay masked (a pruned weight is never revived).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Plan:
    """Final sparsity per layer: `shared` layers share one global threshold at `shared_sparsity`."""
    shared: list[str] = field(default_factory=list)
    shared_sparsity: float = 0.0          # global scope: the target over all prunable weights (`sizes`)
    fixed: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)   # weights of every prunable layer (global scope)

    def scaled(self, fraction_of: Callable[[float], float]) -> Plan:
        """The same plan with every target mapped through a schedule (final -> this step's target)."""
        return Plan(list(self.shared), fraction_of(self.shared_sparsity),
                    {k: fraction_of(v) for k, v in self.fixed.items()}, dict(self.sizes))

    def shared_prune_count(self, shared_total: int) -> int:
        """How many of the shared layers' weights go, so that the whole model meets the target."""
        if not self.sizes:
            return round(self.shared_sparsity * shared_total)
        wanted = round(self.shared_sparsity * sum(self.sizes.values()))
        by_fixed = sum(round(t * self.sizes[name]) for name, t in self.fixed.items())
        return min(shared_total, max(0, wanted - by_fixed))

    @property
    def layers(self) -> list[str]:
        return [*self.shared, *self.fixed]


def make_plan(layers: list[str], sparsity: float, scope: str, overrides: dict[str, float], exclude: list[str],
              classifier: str | None, classifier_scale: float, sizes: dict[str, int] | None = None) -> Plan:
    """`sizes` (weights per layer) makes a global plan meet `sparsity` over all the layers."""
    plan = Plan(shared_sparsity=sparsity, sizes=dict(sizes or {}) if scope == "global" else {})
    for name in layers:
        if name in overrides:
            plan.fixed[name] = overrides[name]
        elif name in exclude:
            continue
        elif name == classifier and classifier_scale != 1.0:
            plan.fixed[name] = sparsity * classifier_scale
        elif scope == "global":
            plan.shared.append(name)
        else:
            plan.fixed[name] = sparsity
    return plan


def _keep_mask(scores: torch.Tensor, old: torch.Tensor | None, n_prune: int) -> torch.Tensor:
    """Bool mask (True = kept) that removes the `n_prune` lowest scores, previously pruned first."""
    flat = scores.detach().flatten().float()
    if old is not None:
        flat = torch.where(old.flatten().to(flat.device), flat, torch.full_like(flat, -float("inf")))
        n_prune = max(n_prune, int((~old).sum()))
    keep = torch.ones_like(flat, dtype=torch.bool)
    if n_prune > 0:
        keep[torch.topk(flat, min(n_prune, flat.numel()), largest=False).indices] = False
    return keep.view(scores.shape)


def compute_masks(layers: Mapping[str, nn.Module], scores: dict[str, torch.Tensor], plan: Plan,
                  old_masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """New masks for every layer in the plan, keyed by parameter name (`<layer>.weight`)."""
    masks: dict[str, torch.Tensor] = {}
    for name, target in plan.fixed.items():
        s = scores[name]
        masks[f"{name}.weight"] = _keep_mask(s, old_masks.get(f"{name}.weight"), round(target * s.numel()))
    if plan.shared:
        flat, olds = [], []
        for name in plan.shared:
            old = old_masks.get(f"{name}.weight")
            flat.append(scores[name].detach().flatten().float())
            olds.append(old.flatten().to(flat[-1].device) if old is not None
                        else torch.ones(flat[-1].numel(), dtype=torch.bool, device=flat[-1].device))
        total = sum(t.numel() for t in flat)
        keep = _keep_mask(torch.cat(flat), torch.cat(olds), plan.shared_prune_count(total))
        for name, part in zip(plan.shared, torch.split(keep, [t.numel() for t in flat])):
            masks[f"{name}.weight"] = part.view(scores[name].shape)
    return masks


def apply(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].device, params[name].dtype))
