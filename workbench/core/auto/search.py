"""The accuracy-aware loop, the planners and the calibration of predicted against measured cost.

Strength: a candidate at level L aims at target_cost / (1 + L) (level 0 is the target itself; 0.25 is a
file 25% smaller, or 25% faster, than asked). `Strength` proposes levels as NNCF's adaptive compression
level does: start at the target; while candidates meet max_drop, push further by `step`; after the first
failure, bisect between the strongest level that passed and the weakest that failed, until the interval
is below `min_step` (or the caller's epoch budget runs out). The target itself is a hard constraint, so
the loop never backs off below level 0: a failure there is retried with more fine-tuning (the caller's
`retries`), and if nothing meets both the stage fails with the best it found.

Planners turn a budget (in option-cost units) into an allocation: `knapsack` (the solver over the option
table) and `uniform` (the same sparsity and bits, or channel fraction, for every layer: the baseline to
compare with; a continuous strength interpolated between the table's grid points, so it can use the whole
budget). `Calibration` maps the sum of the options' costs to the measured total and back: predicted =
offset + scale x sum; a measurement right after applying an allocation (before fine-tuning) moves the
offset (bytes, parameters: the header and the tensors outside the table) or the scale (latency, FLOPs:
savings of pruned groups do not simply add up).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .options import Allocation, Option, OptionTable
from .solver import solve


@dataclass
class Plan:
    allocation: Allocation               # group -> option key
    option_cost: float                   # sum of the options' costs (table units)
    loss: float                          # predicted loss


def knapsack(table: OptionTable, budget: float) -> Plan | None:
    solution = solve(table.costs(), table.losses(), budget)
    if solution is None:
        return None
    return Plan(table.allocation(solution.choice), solution.cost, solution.loss)


def _cheapest(opts: list[Option]) -> int:
    return min(range(len(opts)), key=lambda k: (opts[k].cost, opts[k].loss))


def strongest(table: OptionTable) -> Plan:
    """Every group at its cheapest option (the most compression the options allow)."""
    choice = [_cheapest(table.options[g]) for g in table.groups]
    costs, losses = table.costs(), table.losses()
    return Plan(table.allocation(choice), float(sum(c[k] for c, k in zip(costs, choice, strict=True))),
                float(sum(row[k] for row, k in zip(losses, choice, strict=True))))


def _curves(table: OptionTable, group: str, bits: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strengths, costs, losses) of one group along the sparsity (or channel) axis at fixed bits."""
    axis = "channels" if table.kind == "structured" else "sparsity"
    rows = sorted((o.key[axis], o.cost, o.loss) for o in table.options[group]
                  if table.kind == "structured" or o.key.get("bits") == bits)
    s, c, q = (np.array(v, dtype=np.float64) for v in zip(*rows))
    return s, np.minimum.accumulate(c), q


def uniform(table: OptionTable, budget: float, iterations: int = 40) -> Plan | None:
    """One strength for every group (and one bit width), the least compression that fits the budget.

    Costs and losses between grid points are interpolated linearly; of the bit widths, the one with the
    least predicted loss at its own fitting strength is taken."""
    if not table.groups:
        return Plan({}, 0.0, 0.0) if budget >= 0 else None
    axis = "channels" if table.kind == "structured" else "sparsity"
    widths = [None] if table.kind == "structured" else sorted(
        {o.key.get("bits") for g in table.groups for o in table.options[g]}, key=lambda b: (b is None, b or 0))
    best: Plan | None = None
    for bits in widths:
        try:
            curves = {g: _curves(table, g, bits) for g in table.groups}
        except ValueError:                  # a group without this width
            continue
        lo = max(float(s[0]) for s, _, _ in curves.values())
        hi = min(float(s[-1]) for s, _, _ in curves.values())
        if lo > hi:
            continue

        def at(x: float, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = curves) -> tuple[float, float]:
            return (sum(float(np.interp(x, s, c)) for s, c, _ in curves.values()),
                    sum(float(np.interp(x, s, q)) for s, _, q in curves.values()))

        if at(hi)[0] > budget:
            continue
        if at(lo)[0] > budget:
            a, b = lo, hi
            for _ in range(iterations):
                mid = (a + b) / 2
                a, b = (mid, b) if at(mid)[0] > budget else (a, mid)
            x = b
        else:
            x = lo
        cost, loss = at(x)
        key = {axis: round(x, 6)} if bits is None and table.kind == "structured" else {axis: round(x, 6), "bits": bits}
        plan = Plan({g: dict(key) for g in table.groups}, cost, loss)
        if best is None or plan.loss < best.loss:
            best = plan
    return best


def same_width(table: OptionTable, budget: float) -> Plan | None:
    """For a table of bit widths: one width for every layer (the uniform allocation's), the most that fits."""
    widths = {o.key["bits"] for g in table.groups for o in table.options[g]}
    for bits in sorted(widths, key=lambda b: -(b or 99)):
        picked = {g: next(o for o in table.options[g] if o.key["bits"] == bits) for g in table.groups}
        cost = sum(o.cost for o in picked.values())
        if cost <= budget:
            return Plan({g: dict(o.key) for g, o in picked.items()}, cost, sum(o.loss for o in picked.values()))
    return None


PLANNERS = {"knapsack": knapsack, "uniform": uniform}


@dataclass
class Calibration:
    """predicted total = offset + scale x (sum of option costs); `mode` says which one a measurement moves.

    In "scale" mode the line goes through the latest measurement (a Newton step with the median slope): latency
    flattens as a model shrinks (per-operator overhead, int8's quantize/dequantize), so a line anchored at the
    unpruned model alone keeps predicting too low near the target and the trials stall above it."""
    offset: float
    scale: float = 1.0
    mode: str = "offset"                 # "offset" | "scale"
    history: list[tuple[float, float]] = field(default_factory=list)   # (predicted, measured)
    scales: list[float] = field(default_factory=list)
    last: tuple[float, float] | None = None     # scale mode: (option cost, measured) of the latest measurement

    def predicted(self, option_cost: float) -> float:
        if self.last is not None:
            return self.last[1] + self.scale * (option_cost - self.last[0])
        return self.offset + self.scale * option_cost

    def budget(self, target: float) -> float:
        """The option-cost budget that the calibrated model predicts meets `target`."""
        if self.last is not None:
            return self.last[0] + (target - self.last[1]) / self.scale
        return (target - self.offset) / self.scale

    def update(self, option_cost: float, measured: float) -> None:
        """Bytes are exact: the latest measurement sets the offset. Latency is noisy: the scale is the median of
        the scales every measurement so far implied."""
        self.history.append((self.predicted(option_cost), measured))
        if self.mode == "offset" or abs(option_cost) < 1e-12:
            self.offset = measured - self.scale * option_cost
        else:
            self.scales.append(min(5.0, max(0.2, (measured - self.offset) / option_cost)))
            self.scale = float(np.median(self.scales))
            self.last = (option_cost, measured)


@dataclass
class Candidate:
    level: float
    target: float                        # the cost this candidate aimed at (target / (1 + level))
    predicted: float                     # the calibrated prediction of its cost
    trial: float | None                  # measured right after applying, before fine-tuning
    measured: float | None               # measured at the end
    val_accuracy: float
    drop: float
    epochs: int
    meets_target: bool
    meets_drop: bool
    allocation: Allocation
    predicted_loss: float = 0.0
    planner: str = "knapsack"            # whose allocation: knapsack or uniform

    @property
    def ok(self) -> bool:
        return self.meets_target and self.meets_drop

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def row(self, dense_bytes: float | None = None) -> dict[str, Any]:
        """A flat record for auto.json and reports: the allocation as text, the ratio for size targets."""
        row = {k: v for k, v in self.to_json().items() if k != "allocation"}
        row["allocation"] = ", ".join(f"{g} " + "/".join(f"{k[0]}{v:g}" for k, v in key.items() if v is not None)
                                      for g, key in self.allocation.items())
        if dense_bytes is not None:
            row["ratio"] = dense_bytes / self.measured if self.measured else None
        return row


def per_layer(allocation: Allocation, members: dict[str, list[str]]) -> Allocation:
    """A group's option for each layer it prunes: {layer: {sparsity, bits} or {channels}}."""
    return {m: dict(key) for g, key in allocation.items() for m in members.get(g, [g])}


class Strength:
    """Proposes the next level to try; `record` what came of it."""

    def __init__(self, push: bool = True, step: float = 0.25, min_step: float = 0.05, max_level: float = 1.0,
                 retries: int = 1) -> None:
        self.push, self.step, self.min_step, self.max_level, self.retries = push, step, min_step, max_level, retries
        self.passed: list[float] = []
        self.failed: list[float] = []
        self.base_failures = 0

    def record(self, level: float, ok: bool) -> None:
        (self.passed if ok else self.failed).append(level)
        if not ok and level == 0.0:
            self.base_failures += 1

    def propose(self) -> float | None:
        if not self.passed:
            return 0.0 if self.base_failures <= self.retries else None
        if not self.push:
            return None
        lo = max(self.passed)
        above = [f for f in self.failed if f > lo]
        if not above:
            nxt = min(lo + max(self.step, self.min_step), self.max_level)
            return nxt if nxt > lo + 1e-9 else None
        hi = min(above)
        if hi - lo < self.min_step:
            return None
        return (lo + hi) / 2


def target_at(target_cost: float, level: float) -> float:
    return target_cost / (1.0 + level)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(cost, accuracy) points no other point beats on both: cheaper or equal and at least as accurate."""
    front: list[tuple[float, float]] = []
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((cost, acc))
    return front


def best(candidates: list[Candidate]) -> Candidate | None:
    """Of the candidates that met both the target and max_drop, one at the strongest level (the most compression
    aimed at); at that level (rival allocations for the same goal) the most accurate, then the most compressed."""
    good = [c for c in candidates if c.ok]
    if not good:
        return None
    return min(good, key=lambda c: (-c.level, -c.val_accuracy, c.measured if c.measured is not None else math.inf))


def closest(candidates: list[Candidate]) -> Candidate | None:
    """For the failure message: the candidate nearest to meeting both (met the target, smallest drop)."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (not c.meets_target, c.drop, c.measured or math.inf))
