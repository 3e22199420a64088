"""The multiple-choice knapsack: one option per group, least total loss, total cost within a budget.

`solve` is dynamic programming over the discretised cost. Each group's costs are shifted by their
minimum (so costs may be negative, e.g. latency savings written as -saving), then measured in bins:
with integer costs (bytes, parameters) and a budget of at most `max_bins` bins, a bin is one unit and
the answer is the exact optimum; otherwise a bin is budget / max_bins and every cost is rounded *up* to
whole bins, so the answer always meets the real budget and loses at most one bin per group against the
optimum. Time O(groups x options x bins) in numpy (54 layers x 84 options x 20,000 bins: about a second).

`lagrangian` is the alternative (a sweep over the multiplier: each group independently minimises
loss + lambda x cost, bisection on lambda to the smallest lambda that fits). It is faster but only
reaches the lower convex hull of the options: with few groups it can leave much of the budget unused
(the duality gap), which is why `solve` is what the stage uses; tests compare both with brute force.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_BINS = 20_000


@dataclass(frozen=True)
class Solution:
    choice: tuple[int, ...]      # option index per group
    cost: float                  # total cost (original units)
    loss: float                  # total predicted loss


def _arrays(costs: Sequence[Sequence[float]], losses: Sequence[Sequence[float]]) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(costs) != len(losses):
        raise ValueError("costs and losses must have one row per group")
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for g, (cost_row, loss_row) in enumerate(zip(costs, losses)):
        c, q = np.asarray(cost_row, dtype=np.float64), np.asarray(loss_row, dtype=np.float64)
        if c.shape != q.shape or c.ndim != 1 or c.size == 0:
            raise ValueError(f"group {g}: costs and losses must be equal, non-empty lists")
        if not (np.isfinite(c).all() and np.isfinite(q).all()):
            raise ValueError(f"group {g}: costs and losses must be finite")
        out.append((c, q))
    return out


def _solution(rows: list[tuple[np.ndarray, np.ndarray]], choice: list[int]) -> Solution:
    return Solution(tuple(int(k) for k in choice), float(sum(c[k] for (c, _), k in zip(rows, choice))),
                    float(sum(q[k] for (_, q), k in zip(rows, choice))))


def solve(costs: Sequence[Sequence[float]], losses: Sequence[Sequence[float]], budget: float,
          max_bins: int = MAX_BINS) -> Solution | None:
    """The allocation of least total loss whose total cost is at most `budget`; None if none fits."""
    rows = _arrays(costs, losses)
    if not rows:
        return Solution((), 0.0, 0.0)
    floor = sum(float(c.min()) for c, _ in rows)
    room = budget - floor
    if room < -1e-9 * max(1.0, abs(budget)):
        return None
    room = max(room, 0.0)
    shifted = [(c - c.min(), q) for c, q in rows]
    integral = all(np.allclose(c, np.round(c), rtol=0, atol=1e-9) for c, _ in shifted)
    unit = 1.0 if integral and room <= max_bins else (room / max_bins if room > 0 else 1.0)
    n = int(math.floor(room / unit + 1e-9))
    best = np.zeros(n + 1)                   # least loss with total (shifted, binned) cost <= b
    picks: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for c, q in shifted:
        w = np.ceil(c / unit - 1e-9).astype(np.int64)
        w[c <= 0] = 0
        new = np.full(n + 1, np.inf)
        pick = np.full(n + 1, -1, dtype=np.int32)
        for k in np.argsort(q, kind="stable"):          # lower loss first: ties keep the better option
            wk = int(w[k])
            if wk > n:
                continue
            cand = best[: n + 1 - wk] + q[k]
            better = cand < new[wk:]
            new[wk:][better] = cand[better]
            pick[wk:][better] = k
        if not np.isfinite(new[n]):
            return None
        best = new
        picks.append(pick)
        weights.append(w)
    choice, b = [], n
    for pick, w in zip(reversed(picks), reversed(weights)):
        k = int(pick[b])
        choice.append(k)
        b -= int(w[k])
    choice.reverse()
    return _solution(rows, choice)


def lagrangian(costs: Sequence[Sequence[float]], losses: Sequence[Sequence[float]], budget: float,
               iterations: int = 80) -> Solution | None:
    """Least loss + lambda x cost per group, with lambda bisected to the smallest value that fits."""
    rows = _arrays(costs, losses)

    def pick(lam: float) -> list[int]:
        out = []
        for c, q in rows:
            score = q + lam * c if math.isfinite(lam) else c
            best = np.flatnonzero(score <= score.min() + 1e-12)
            out.append(int(best[np.argmin(c[best])]))      # ties: the cheaper option
        return out

    def cost(choice: list[int]) -> float:
        return sum(float(c[k]) for (c, _), k in zip(rows, choice))

    if cost(pick(0.0)) <= budget:
        return _solution(rows, pick(0.0))
    if cost(pick(math.inf)) > budget:
        return None
    lo, hi = 0.0, 1.0
    while cost(pick(hi)) > budget and hi < 1e15:
        lo, hi = hi, hi * 4
    if cost(pick(hi)) > budget:
        return _solution(rows, pick(math.inf))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if cost(pick(mid)) <= budget:
            hi = mid
        else:
            lo = mid
    return _solution(rows, pick(hi))
