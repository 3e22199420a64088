"""Sparsity targets per pruning step.

All targets are cumulative (fraction of the original weights, or channels, removed after step t).

- oneshot: one step straight to the target.
- iterative: `steps` steps, each removing the same fraction of what remains (Han et al. 2015),
  s_t = 1 - (1 - s_f)^(t / n), so early steps remove the most redundant weights in larger chunks.
- gradual: the cubic schedule of Zhu & Gupta (2017), s_t = s_f + (s_i - s_f)(1 - t / n)^3:
  fast at first, slow near the end when fewer redundant weights remain.
"""
from __future__ import annotations

from collections.abc import Callable

SCHEDULES = ["oneshot", "iterative", "gradual"]


def gradual(final: float, steps: int, initial: float = 0.0) -> list[float]:
    """Zhu & Gupta's cubic schedule: the targets after steps 1..n (t0 = 0, dt = 1)."""
    initial = min(initial, final)
    return [final + (initial - final) * (1.0 - t / steps) ** 3 for t in range(1, steps + 1)]


def iterative(final: float, steps: int) -> list[float]:
    """Equal fraction of the remaining weights at each of `steps` steps."""
    return [1.0 - (1.0 - final) ** (t / steps) for t in range(1, steps + 1)]


def targets(kind: str, final: float, steps: int, initial: float = 0.0) -> list[float]:
    """Cumulative sparsity after each step; the last is always exactly `final`."""
    if kind == "oneshot" or steps <= 1:
        return [final]
    if final <= 0.0:                 # nothing to prune: every step keeps every weight (one target per step)
        return [final] * steps
    values = gradual(final, steps, initial) if kind == "gradual" else iterative(final, steps)
    values[-1] = final
    return values


def scheduler(kind: str, steps: int, initial: float = 0.0) -> Callable[[float, int], list[float]]:
    """torch-pruning's `iterative_pruning_ratio_scheduler`: ratio -> [0, target_1, ..., target_n]."""
    def schedule(ratio: float, n: int) -> list[float]:
        return [0.0, *targets(kind, ratio, steps, initial)]
    return schedule
