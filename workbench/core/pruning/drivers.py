"""One object per kind of pruning, with the same small interface the `prune` stage drives:

    driver.prune_step(k)   -> Iterator[Event]   prune to the schedule's k-th target
    driver.rewind(rewinder)                      lottery ticket: surviving weights to earlier values
    driver.finish(session)                       record what was done (masks, model transform)
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol

import torch
from torch import nn

from ..events import Event, Progress
from . import importance as imp
from . import rounding, structured, unstructured
from .layers import prunable_layers
from .lottery import Rewinder

Target = Callable[[float, int], float]   # (final sparsity, step) -> cumulative target after that step


class PruneSession(imp.CalibrationSession, Protocol):
    """What the drivers need of the `prune` stage's session."""

    seed: int
    masks: dict[str, torch.Tensor]

    @property
    def model(self) -> nn.Module: ...
    def apply_masks(self) -> None: ...
    def example_input(self, batch: int = 1) -> torch.Tensor: ...
    def drop_stale_state(self) -> None: ...
    def set_model(self, model: nn.Module, transform: dict[str, Any] | None = None) -> None: ...


class PruneParams(Protocol):
    """The `prune` stage's parameters the drivers read."""

    method: str
    scope: str
    sparsity: float
    schedule: str
    steps: int
    exclude: list[str]
    overrides: dict[str, float]
    classifier_scale: float
    activation_stat: str
    calib_batches: int
    round_to: int | str
    max_layer_sparsity: float


class UnstructuredDriver:
    def __init__(self, session: PruneSession, p: PruneParams, classifier: str | None, target: Target) -> None:
        self.session, self.p, self.target = session, p, target
        self.layers = prunable_layers(session.model)
        self.plan = unstructured.make_plan(list(self.layers), p.sparsity, p.scope, p.overrides, p.exclude,
                                           classifier, p.classifier_scale,
                                           {n: m.weight.numel() for n, m in self.layers.items()})
        self.generator = torch.Generator().manual_seed(session.seed)

    def prune_step(self, k: int) -> Iterator[Progress]:
        session, p = self.session, self.p
        if p.method in imp.NEEDS_GRADIENTS:
            yield from imp.accumulate_gradients(session.model, imp.calibration_batches(session, p.calib_batches))
        scores = imp.weight_scores(p.method, {n: self.layers[n] for n in self.plan.layers}, self.generator)
        session.model.zero_grad(set_to_none=True)
        yield Progress(0, 1, f"step {k + 1}: choosing weights")
        plan = self.plan.scaled(lambda final: self.target(final, k))
        masks = unstructured.compute_masks(self.layers, scores, plan, session.masks)
        session.masks.update(masks)
        unstructured.apply(session.model, masks)
        yield Progress(1, 1, f"step {k + 1}: pruned")

    def rewind(self, rewinder: Rewinder) -> None:
        rewinder.rewind(self.session.model)
        self.session.apply_masks()

    def finish(self, session: PruneSession) -> dict[str, Any]:
        return {"layers": self.plan.layers}


def _pruner(model: nn.Module, example: torch.Tensor, p: PruneParams, classifier: str | None, importance: Any,
            scheduler: Callable[[float, int], list[float]] | None, steps: int, round_to: int) -> Any:
    modules = dict(model.named_modules())
    ignored = [modules[n] for n in {*p.exclude, *([classifier] if classifier else [])}]
    return structured.make_pruner(model, example, importance, p.sparsity, p.scope,
                                  {modules[n]: s for n, s in p.overrides.items()}, ignored, scheduler, steps,
                                  round_to, p.max_layer_sparsity)


def round_to(session: PruneSession, p: PruneParams, classifier: str | None) -> Generator[Event, None, int]:
    """The generator's return value: `p.round_to`, or for `auto` the multiple that measures fastest
    (`rounding.choose` on copies pruned in one step to the final target; channels ranked by their L1 norm
    when the stage's criterion needs calibration data)."""
    if p.round_to != "auto":
        return int(p.round_to)
    example = session.example_input(1)
    method = p.method if p.method not in imp.NEEDS_GRADIENTS | imp.NEEDS_ACTIVATIONS else "l1"

    def prune_copy(multiple: int) -> nn.Module:
        trial = copy.deepcopy(session.model).eval()
        pruner = _pruner(trial, example, p, classifier, imp.structured_importance(method), None, 1, multiple)
        with torch.no_grad():
            for _ in structured.step(pruner):
                pass
        return trial

    chosen: int = yield from rounding.choose(session.model, example, prune_copy)
    return chosen


class StructuredDriver:
    def __init__(self, session: PruneSession, p: PruneParams, classifier: str | None,
                 scheduler: Callable[[float, int], list[float]] | None, multiple: int = 1) -> None:
        self.session, self.p, self.multiple = session, p, multiple
        self.example = session.example_input(1)
        self.importance = imp.structured_importance(p.method, p.activation_stat)
        self.pruner = _pruner(session.model, self.example, p, classifier, self.importance, scheduler,
                              _step_count(p), multiple)

    def prune_step(self, k: int) -> Iterator[Progress]:
        session, p = self.session, self.p
        model = session.model
        if p.method in imp.NEEDS_GRADIENTS or p.method in imp.NEEDS_ACTIVATIONS:
            yield from imp.prepare_importance(self.importance, p.method, model,
                                              imp.calibration_batches(session, p.calib_batches))
        model.eval()
        with torch.no_grad():  # importance reads gradients already accumulated in .grad
            yield from structured.step(self.pruner)
        model.zero_grad(set_to_none=True)
        session.drop_stale_state()

    def history(self) -> structured.History:
        return structured.history(self.pruner)

    def rewind(self, rewinder: Rewinder) -> None:
        rewinder.rewind(self.session.model, self.history(), self.example)

    def finish(self, session: PruneSession) -> dict[str, Any]:
        t = structured.transform(session.model, tuple(self.example.shape[1:]), self.history())
        session.set_model(session.model, transform=t)
        return {"groups_pruned": len(t["history"]), "round_to": self.multiple}


def _step_count(p: PruneParams) -> int:
    return 1 if p.schedule == "oneshot" else p.steps

