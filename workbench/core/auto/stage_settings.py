"""The `auto` stage's settings: the target, the methods that can serve it, the search's budgets (the stage itself is
`core/stages/auto.py`; this module only declares and checks what a recipe may say)."""
from __future__ import annotations

from dataclasses import dataclass

from ..params import param
from ..training import OPTIMIZERS, SCHEDULES
from .progress import check_target
from .search import PLANNERS

METHODS = ["prune", "structured", "kmeans", "int8"]
FITS = {"ratio": {"prune", "kmeans", "structured"}, "latency": {"structured", "int8"}, "flops": {"structured"},
        "params": {"prune", "structured"}}


@dataclass
class Params:
    target: dict[str, float] = param({"ratio": 40.0}, "One of {ratio: N} (compressed file N times smaller than the "
                                     "baseline's fp32 bytes), {latency: f}, {flops: f}, {params: f} (fractions of "
                                     "the stage input's measured value).", check=check_target)
    max_drop: float = param(0.01, "Largest allowed drop of val accuracy (absolute: 0.01 = one point).",
                            min=0.0, max=1.0, step=0.005)
    methods: list[str] = param(["prune", "kmeans"], "Knobs per layer: prune (unstructured sparsity), kmeans (bits), "
                               "structured (channels; latency, FLOPs), int8 (whole model, latency).", choices=METHODS)
    epochs: int = param(60, "Total fine-tuning budget of the search, in epochs over all candidates.", min=0, max=100000)
    allocation: str = param("best", "best: the knapsack's allocation and the uniform one both tried at the target, "
                            "the search going on with the better on val. knapsack: per-layer options with the least "
                            "predicted loss. uniform: one sparsity and bit width (or channel fraction) everywhere.",
                            choices=["best", *PLANNERS])
    push: bool = param(True, "With accuracy to spare, try more compression than the target (bisection on the "
                       "strength) and keep the strongest candidate within max_drop.")
    finetune_epochs: int = param(20, "Weight fine-tuning epochs per candidate (spread over prune_steps).", min=0,
                                 max=10000)
    centroid_epochs: int = param(2, "k-means centroid fine-tuning epochs per candidate.", min=0, max=10000)
    prune_steps: int = param(3, "Unstructured: pruning steps per candidate (iterative, fine-tuning between).",
                             min=1, max=100)
    lr: float = param(2e-3, "Fine-tuning learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    centroid_lr: float = param(1e-4, "Centroid fine-tuning learning rate.", min=0.0, max=10.0, min_exclusive=True,
                               step=1e-5, advanced=True)
    optimizer: str = param("adamw", "Fine-tuning optimiser.", choices=OPTIMIZERS)
    lr_schedule: str = param("cosine", "Fine-tuning learning-rate schedule (restarted at each pruning step).",
                             choices=SCHEDULES, advanced=True)
    weight_decay: float = param(0.01, "Fine-tuning weight decay.", min=0.0, max=1.0, step=1e-5, advanced=True)
    batch_size: int = param(64, "Fine-tuning samples per step.", min=1, max=4096)
    exclude: list[str] = param([], "Layers left alone.", layers=True)
    sparsities: list[float] = param([0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99],
                                    "Unstructured sparsities each layer may get.", min=0.0, max=1.0,
                                    max_exclusive=True, advanced=True, max_items=64)
    bits: list[int] = param([2, 3, 4, 5, 6, 8], "k-means bit widths each layer may get.", min=1, max=8, advanced=True,
                           max_items=64)
    channels: list[float] = param([0.0, 0.25, 0.375, 0.5, 0.625, 0.75], "Structured: fractions of a layer's "
                                  "channels that may be removed.", min=0.0, max=1.0, max_exclusive=True, advanced=True,
                                  max_items=64)
    round_to: int | str = param("auto", "Structured: channel counts kept in multiples of this (as the prune "
                                "stage's round_to; auto: measured for a depthwise-heavy model, else 1).",
                                choices=["auto"], min=1, max=256, advanced=True)
    prune_loss_weight: float = param(0.5, "Weight of a layer's one-shot pruning loss against its clustering loss in "
                                     "the prediction (fine-tuning the survivors recovers most pruning damage; "
                                     "centroid fine-tuning little clustering damage).", min=0.0, max=1.0,
                                     advanced=True)
    step: float = param(0.25, "First push beyond the target (0.25: 25% smaller or faster again).", min=0.0, max=10.0,
                        min_exclusive=True, advanced=True)
    min_step: float = param(0.05, "The search stops when the bisection interval is below this.", min=0.0, max=10.0,
                            min_exclusive=True, advanced=True)
    max_level: float = param(1.0, "Push at most to target x (1 + this).", min=0.0, max=100.0, advanced=True)
    max_candidates: int = param(8, "At most this many candidates (fine-tuned allocations) in all.", min=1, max=1000,
                                advanced=True)
    retries: int = param(1, "Retries at the target itself, each with twice the fine-tuning, when it misses "
                         "max_drop.", min=0, max=10, advanced=True)
    latency_threads: int = param(1, "torch threads while timing (1 reads steadily on a shared machine; 0: as set).",
                                 min=0, max=1024, advanced=True)
    latency_costs: str = param("flops", "Structured options' latency: flops (their FLOPs change at the input's ms "
                               "per FLOP; exact, the trials calibrate the scale) or measured (timed per option).",
                               choices=["flops", "measured"], advanced=True)
    latency_passes: int = param(5, "Alternating passes (stage input, candidate) per latency measurement.", min=1,
                                max=100, advanced=True)
    calib_batches: int = param(8, "int8: calibration batches.", min=1, max=10000, advanced=True)

    @property
    def goal(self) -> tuple[str, float]:
        return next(iter(self.target.items()))

    def validate(self) -> str | None:
        if not self.methods:
            return "methods: give at least one of " + ", ".join(METHODS)
        kind, _ = self.goal
        wrong = sorted(set(self.methods) - FITS[kind])
        if wrong:
            why = {"latency": "only structured pruning and int8 make a model faster; zeros and shared values do not",
                   "flops": "only structured pruning removes FLOPs", "ratio": "int8 is for latency; kmeans makes "
                   "smaller files", "params": "only pruning removes parameters"}[kind]
            return f"methods: {', '.join(wrong)} cannot serve a {kind} target ({why})"
        if "structured" in self.methods and {"prune", "kmeans"} & set(self.methods):
            return "methods: structured with prune/kmeans in one auto stage is not supported (use two auto stages)"
        if 0.0 not in self.sparsities and "prune" in self.methods:    # an empty list too: no option at all
            return "sparsities: include 0.0 (a layer may stay dense)"
        if 0.0 not in self.channels:
            return "channels: include 0.0 (a layer may keep its channels)"
        return None
