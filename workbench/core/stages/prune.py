"""`prune`: remove weights (unstructured) or whole channels (structured), on a schedule, with fine-tuning.

The algorithms live in `core/pruning/`; this module holds the settings, the checks made before a
run starts, and the loop: prune to the step's target -> (rewind) -> report -> fine-tune -> repeat.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import BadInput, RecipeError
from ..events import Event, LayerStats, Log, Metric
from ..limits import MAX_SNAPSHOT_INDEX
from ..metrics import accuracy
from ..params import param
from ..pruning import importance as imp
from ..pruning import schedule, structured
from ..pruning.drivers import StructuredDriver, UnstructuredDriver, round_to
from ..pruning.layers import checked_layers, classifier_name, layer_stats, param_counts, prunable_layers, unknown_layer, weight_count
from ..pruning.lottery import Rewinder
from ..snapshots import load_snapshot
from ..training import OPTIMIZERS, SCHEDULES, fit
from . import StageKind, register

if TYPE_CHECKING:
    from ..session import Session

DESCRIPTION = ("Remove unimportant weights (unstructured: zeroed and kept at zero) or whole neurons, filters "
               "and channels (structured: the model physically shrinks), in one shot or over several steps "
               "with fine-tuning in between; optionally rewind survivors to their initial values (lottery ticket).")


@dataclass
class Params:
    method: str = param("magnitude", "Importance: magnitude (|w|; for channels the L1 norm), l1 / l2 norm of a "
                        "channel's weights, bn_scale (batch-norm |gamma|, network slimming), activation (statistics "
                        "on calibration data), taylor (|w x gradient|), random. bn_scale and activation need "
                        "structured: true.", choices=imp.METHODS)
    structured: bool = param(False, "false: single weights are zeroed (same shape, kept at zero by masks). true: "
                             "neurons/filters/channels are removed with torch-pruning, so the model gets smaller "
                             "and faster. The final classifier's outputs are never removed.")
    scope: str = param("global", "layer: every layer pruned to the same sparsity. global: one threshold across "
                       "layers, so redundant layers give up more.", choices=["layer", "global"])
    sparsity: float = param(0.5, "Unstructured: fraction of the weights (of Linear and convolution layers; biases "
                            "and batch-norm are neither pruned nor counted) set to zero. Structured: fraction of "
                            "each layer's output channels removed.", min=0.0, max=1.0, max_exclusive=True, step=0.05)
    schedule: str = param("oneshot", "oneshot: prune once. iterative: `steps` steps, each removing the same "
                          "fraction of what remains, fine-tuning in between. gradual: Zhu & Gupta's cubic schedule "
                          "s_t = s_f + (s_i - s_f)(1 - t/n)^3.", choices=schedule.SCHEDULES)
    steps: int = param(5, "Pruning steps (iterative and gradual schedules).", min=1, max=100,
                       when={"schedule": ["iterative", "gradual"]})
    initial_sparsity: float = param(0.0, "s_i of the gradual schedule.", min=0.0, max=1.0, max_exclusive=True,
                                    step=0.05, advanced=True, when={"schedule": "gradual"})
    finetune_epochs: int = param(1, "Fine-tuning epochs after each pruning step (0: none).", min=0, max=1000)
    lr: float = param(1e-3, "Fine-tuning learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    optimizer: str = param("adam", "Fine-tuning optimiser.", choices=OPTIMIZERS)
    batch_size: int = param(64, "Fine-tuning samples per step.", min=1, max=4096)
    weight_decay: float = param(0.0, "Fine-tuning L2 weight decay.", min=0.0, max=1.0, step=1e-5, advanced=True)
    lr_schedule: str = param("constant", "Fine-tuning learning-rate schedule (restarted at each step).",
                             choices=SCHEDULES, advanced=True)
    exclude: list[str] = param([], "Layers left alone (structured: their output channels are kept).", layers=True)
    overrides: dict[str, float] = param({}, "Per-layer sparsity, e.g. {fc1: 0.95}; overridden layers are pruned "
                                        "to their own target, outside the global threshold.", layers=True,
                                        min=0.0, max=1.0, max_exclusive=True)
    classifier_scale: float = param(0.5, "Unstructured: the final classifier is pruned to sparsity x this (0.5: "
                                    "half as sparse, as Han et al. keep the last layer denser; 1: like the others; "
                                    "0: dense). Its own target, outside the global threshold; an override wins.",
                                    min=0.0, max=1.0, step=0.1)
    rewind: str | int = param("none", "Lottery ticket: after each pruning step, set the surviving weights back to "
                              "their values at initialisation (init) or in snapshot N of this run, then retrain "
                              "for finetune_epochs.", choices=["none", "init"], min=0,
                              max=MAX_SNAPSHOT_INDEX)
    activation_stat: str = param("mean", "For method activation: mean |activation| of a channel, or apoz "
                                 "(channels that are mostly zero after ReLU go first).",
                                 choices=imp.ACTIVATION_STATS, advanced=True, when={"method": "activation"})
    calib_batches: int = param(4, "Calibration batches for activation and taylor importance.", min=1, max=1000,
                               advanced=True)
    round_to: int | str = param("auto", "Structured: channel counts kept in multiples of this (the nearest "
                                "multiple; e.g. 8 for fast kernels). auto: for a depthwise-heavy model (MobileNet, "
                                "EfficientNet), the multiple of 1, 4, 8, 16 whose pruned copy runs fastest at batch 1 "
                                "(timed alternately in the stage); 1 for others.", choices=["auto"], min=1, max=256,
                                advanced=True, when={"structured": True})
    max_layer_sparsity: float = param(0.9, "Structured global scope: no layer loses more than this fraction of "
                                      "its channels.", min=0.0, max=1.0, max_exclusive=True, advanced=True,
                                      when={"structured": True, "scope": "global"})

    def validate(self) -> str | None:
        if not self.structured and self.method not in imp.UNSTRUCTURED_METHODS:
            return f"method: {self.method} ranks whole channels: set structured: true, or use magnitude"
        if self.schedule == "gradual" and self.initial_sparsity > self.sparsity:
            return "initial_sparsity: must not exceed sparsity"
        return None


def _path(session: Session) -> str:
    return f"stages[{session.stage_index}]"


def source_state(session: Session, rewind: str | int, path: str = "rewind") -> dict[str, torch.Tensor]:
    """The weights to rewind to: init (`rewind: init`) or snapshot `rewind` of this run."""
    if rewind == "init":
        if session.init_state is None:
            raise BadInput(f"{path}: this model has no weights at initialisation (only sample: models and "
                           f"untrained arch:/torchvision: models carry them); use a snapshot index or rewind: none")
        return dict(session.init_state)
    index = int(rewind)
    if index >= len(session.snapshot_paths):
        raise BadInput(f"{path}: snapshot {index} does not exist when this stage runs "
                       f"(snapshots so far: 0..{len(session.snapshot_paths) - 1})")
    return load_snapshot(session.snapshot_paths[index]).module.state_dict()


def preflight(session: Session, p: Params) -> None:
    path, model = _path(session), session.model
    names = checked_layers(model, p.exclude, path, "prune")
    for name in p.overrides:
        if name not in names:
            raise RecipeError(f"{path}.overrides.{name}: {unknown_layer(name, names)}")
    if p.rewind == "init":
        source_state(session, "init", f"{path}.rewind")
    if p.method == "bn_scale" and not imp.has_batchnorm(model):
        raise RecipeError(f"{path}.method: bn_scale ranks channels by batch-norm scales, but this model has no "
                          f"batch-norm layers (use l1)")
    if p.structured:
        if session.record.get("frozen"):
            raise RecipeError(f"{path}.structured: this model was loaded from a frozen program and cannot be "
                              f"changed structurally")
        example = session.example_input(1)
        classifier = classifier_name(model, example)
        if classifier in p.overrides:
            raise RecipeError(f"{path}.overrides.{classifier}: the final classifier's outputs (the classes) are "
                              f"never removed by structured pruning")
        try:
            structured.check_prunable(model, example, p.sparsity, [*p.exclude, *([classifier] if classifier else [])])
        except BadInput as exc:
            raise RecipeError(f"{path}.structured: {exc.message}") from None


def run(session: Session, p: Params) -> Iterator[Event]:
    path, model = _path(session), session.model
    example = session.example_input(1)
    classifier = classifier_name(model, example)
    n = 1 if p.schedule == "oneshot" else p.steps

    def target(final: float, k: int) -> float:
        return schedule.targets(p.schedule, final, n, p.initial_sparsity)[k]

    rewinder = Rewinder(model, source_state(session, p.rewind, f"{path}.rewind"), f"{path}.rewind") \
        if p.rewind != "none" else None
    original, weights0 = param_counts(model), weight_count(model)
    if p.structured:
        multiple = yield from round_to(session, p, classifier)
        yield Log("info", "building the dependency graph (torch-pruning)")
        driver: UnstructuredDriver | StructuredDriver = StructuredDriver(
            session, p, classifier, schedule.scheduler(p.schedule, n, p.initial_sparsity), multiple)
    else:
        driver = UnstructuredDriver(session, p, classifier, target)
    unit = "of each layer's channels" if p.structured else "of the prunable weights"

    def goal(k: int) -> str:    # per-layer overrides: their range (an auto stage's allocation has sparsity 0 elsewhere)
        if not p.overrides:
            return f"{target(p.sparsity, k):.2%} {unit}"
        low, high = (target(f(p.overrides.values()), k) for f in (min, max))
        elsewhere = f", {target(p.sparsity, k):.2%} elsewhere" if p.sparsity > 0 else ""
        return (f"{low:.2%}-{high:.2%} of the {'channels' if p.structured else 'weights'} of {len(p.overrides)} "
                f"layers (per-layer overrides){elsewhere}")
    for k in range(n):
        yield Log("info", f"pruning step {k + 1}/{n}: target {goal(k)}")
        yield from driver.prune_step(k)
        if rewinder is not None:
            driver.rewind(rewinder)
        sparsity = 1.0 - _nonzero_weights(session.model) / weights0
        yield Log("info", f"pruning step {k + 1}/{n}: {sparsity:.2%} of the prunable weights removed or zero "
                          f"(target {goal(k)})")
        yield LayerStats(layer_stats(session.model, original))
        yield Metric("prune/sparsity", sparsity, k + 1)
        yield Metric("prune/accuracy", accuracy(session.model, session.data.val, session.device), k + 1)
        yield from fit(session, p.finetune_epochs, p.lr, p.optimizer, p.lr_schedule, p.weight_decay, p.batch_size,
                       label="finetune", step_offset=k * p.finetune_epochs)
    details = driver.finish(session)
    sparsity = 1.0 - _nonzero_weights(session.model) / weights0
    yield LayerStats(layer_stats(session.model, original))
    session.note(op="prune", method=p.method, structured=p.structured, scope=p.scope, target=p.sparsity,
                 schedule=p.schedule, steps=n, rewind=p.rewind, weight_sparsity=sparsity,
                 classifier=classifier, **details)
    yield Log("info", f"pruned: {sparsity:.2%} of the prunable weights removed or zero")


def _nonzero_weights(model: nn.Module) -> int:
    return sum(int(m.weight.count_nonzero()) for m in prunable_layers(model).values())


STAGE = register(StageKind(kind="prune", title="Prune",
                           description=DESCRIPTION, params=Params, run=run, preflight=preflight))
