"""The search itself: candidates at the levels `Strength` proposes, each planned, calibrated, applied, fine-tuned
and checked on val, until the strength interval is small or the epoch budget is spent.

What touches the session (applying an allocation, trials on a copy, measuring, keeping a state) is the
caller's `Host`, so this package stays below the stages: the `auto` stage implements it with the prune and
quantize stages.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

from ..events import Event, LayerStats, Log, Metric, Series
from .options import Allocation, OptionTable
from .search import Calibration, Candidate, Plan, Strength, best, pareto, strongest, target_at
from .state import State

Planner = Callable[[OptionTable, float], Plan | None]


class Host(Protocol):
    x_label: str
    planner: str                          # the name of the planner whose allocation is being applied (set here)

    def trial(self, allocation: Allocation) -> float: ...          # apply to a copy, no fine-tuning: cost
    def apply(self, allocation: Allocation, epochs: int, centroid_epochs: int, offset: float,
              goal: float) -> Generator[Event, None, float | None]: ...
                                            # to the session, from the stage input; returns what the allocation
                                            # as planned cost after fine-tuning (None: the measured cost)
    def applied(self, allocation: Allocation) -> Allocation: ...   # what apply really did
    def measure(self) -> float: ...                                # the session's cost
    def accuracy(self) -> float: ...                               # the session's val accuracy
    def keep(self) -> State: ...                                   # the session's state, to restore later
    def fmt(self, cost: float | None) -> str: ...
    def check_cancel(self) -> None: ...


@dataclass
class Settings:
    target: float                       # the cost to reach (bytes, ms, FLOPs, parameters)
    base_accuracy: float
    max_drop: float
    epochs: int                         # total fine-tuning budget
    finetune_epochs: int                # per candidate
    centroid_epochs: int = 0            # per candidate (k-means)
    push: bool = True
    step: float = 0.25
    min_step: float = 0.05
    max_level: float = 1.0
    retries: int = 1
    max_candidates: int = 8
    margin: float = 0.01                # trials aim this fraction below a candidate's goal (grows with what
                                        # fine-tuning was seen to add to a trial's cost)
    tolerance: float = 0.03             # a trial this close under the aim is good enough
    trials: int = 4


@dataclass
class Outcome:
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    state: State | None = None
    spent: int = 0


class _Knobs(TypedDict):
    longer: int                 # failures at the target that longer fine-tuning may fix
    margin: float               # the trials' aim below a goal


Found = tuple[Plan, float, float]        # (plan, predicted, trial cost)


def calibrated_plan(host: Host, table: OptionTable, planner: Planner, cal: Calibration, goal: float, s: Settings,
                    margin: float) -> Generator[Event, None, Found | None]:
    """Plan for `goal`, measure a trial, move the calibration, re-plan; returns (plan, predicted, trial cost) or None.

    Keeps the least compressed plan whose trial met the aim (`margin` below the goal: what fine-tuning may add)."""
    aim = goal * (1.0 - margin)
    found: Found | None = None
    nearest: Found | None = None
    measured_strongest = False
    for i in range(s.trials):
        plan = planner(table, cal.budget(aim))
        if plan is None:
            # the table predicts the aim out of reach; predictions of latency are sums of savings measured one
            # group at a time, so measure the strongest allocation once before believing it
            if measured_strongest:
                break
            plan, measured_strongest = strongest(table), True
        predicted = cal.predicted(plan.option_cost)
        measured = host.trial(plan.allocation)
        host.check_cancel()
        cal.update(plan.option_cost, measured)
        yield Log("info", f"trial {i + 1}: predicted {host.fmt(predicted)}, measured {host.fmt(measured)} "
                          f"(aiming at {host.fmt(aim)})")
        if measured <= aim:
            if found is None or measured > found[2]:
                found = (plan, predicted, measured)
            if measured >= aim * (1.0 - s.tolerance):
                break
        elif measured <= goal and (nearest is None or measured < nearest[2]):
            nearest = (plan, predicted, measured)
    return found or nearest        # under the goal but not the aim: the candidate's own measurement decides


def _series(host: Host, candidates: list[Candidate]) -> Iterator[Event]:
    points = [(c.measured, c.val_accuracy) for c in candidates if c.measured is not None]
    if points:
        xs, ys = zip(*points)
        yield Series("auto/candidates", tuple(xs), tuple(ys), x_label=host.x_label, y_label="val accuracy")
        front = pareto(points)
        yield Series("auto/pareto", tuple(x for x, _ in front), tuple(y for _, y in front), x_label=host.x_label,
                     y_label="val accuracy")


def search(host: Host, table: OptionTable, planner: Planner, cal: Calibration, s: Settings,
           rivals: tuple[tuple[str, Planner], ...] = (), name: str = "knapsack") -> Generator[Event, None, Outcome]:
    """Yields events; returns an Outcome (its `state` is the chosen candidate's, from `host.keep()`).

    `rivals`: other planners tried at the target too (the first level only); the search goes on with the planner
    whose candidate met the target with the best val accuracy (a per-layer allocation predicted from one-shot
    losses is not always better after fine-tuning than one strength everywhere)."""
    out = Outcome()
    loop = Strength(s.push, s.step, s.min_step, s.max_level, s.retries)
    # per planner: its calibration and knobs (failures at the target that longer fine-tuning may fix; the trials'
    # aim below a goal), so that a rival is planned as if it ran alone
    own = {n: (pl, copy.deepcopy(cal), _Knobs(longer=0, margin=s.margin)) for n, pl in ((name, planner), *rivals)}
    while (level := loop.propose()) is not None and len(out.candidates) < s.max_candidates:
        tried: list[tuple[Candidate | None, str]] = []
        for i, host.planner in enumerate(list(own) if not out.candidates else [name]):
            if i:
                yield Log("info", f"the same goal with the {host.planner} allocation, for comparison")
            plan_with, its_cal, knobs = own[host.planner]
            cand = yield from _candidate(host, table, plan_with, its_cal, s, out, level, knobs)
            if cand is False:                     # the epoch budget is spent
                return out
            tried.append((cand, host.planner))
        done = [(c, n) for c, n in tried if c is not None]
        if not done:
            loop.record(level, False)
            if level == 0.0:
                break
            continue
        cand, name = max(done, key=lambda t: (t[0].meets_target, t[0].val_accuracy))
        if len(tried) > 1:
            yield Log("info", f"going on with the {name} allocation (val accuracy {cand.val_accuracy:.2%})")
        loop.record(level, cand.ok)
        own[name][2]["longer"] += int(level == 0.0 and not cand.meets_drop)
    return out


def _candidate(host: Host, table: OptionTable, planner: Planner, cal: Calibration, s: Settings, out: Outcome,
               level: float, knobs: _Knobs) -> Generator[Event, None, Candidate | None | Literal[False]]:
    """One candidate at `level`: plan, calibrate, apply, fine-tune, measure. Returns it, None when no allocation
    reaches the level's goal, False when the epoch budget is spent."""
    double = 2 ** knobs["longer"] if level == 0.0 else 1
    weights, centroids = s.finetune_epochs * double, s.centroid_epochs * double
    left = s.epochs - out.spent
    if weights + centroids > left:                # fit the candidate into what is left, if a plain one fits
        if out.candidates and left < s.finetune_epochs + s.centroid_epochs:
            yield Log("info", f"the epoch budget ({s.epochs}) is spent: {out.spent} used, the next candidate needs "
                              f"{s.finetune_epochs + s.centroid_epochs}")
            return False
        centroids = min(centroids, left)
        weights = left - centroids
    goal = target_at(s.target, level)
    yield Log("info", f"candidate {len(out.candidates) + 1}: level {level:.3f}, aiming at {host.fmt(goal)}")
    found = yield from calibrated_plan(host, table, planner, cal, goal, s, knobs["margin"])
    if found is None:
        yield Log("warning", f"no allocation of the option table reaches {host.fmt(goal)}")
        return None
    plan, predicted, trial = found
    planned = yield from host.apply(plan.allocation, weights, centroids, float(out.spent), goal)
    out.spent += weights + centroids
    measured, acc = host.measure(), host.accuracy()
    drift = (planned if planned is not None else measured) / trial if trial > 0 else 1.0
    if drift > 1.0:                               # fine-tuning moved the cost: aim that much lower from now on
        knobs["margin"] = max(knobs["margin"], drift - 1.0 + s.margin / 2)
    drop = s.base_accuracy - acc
    cand = Candidate(level, goal, predicted, trial, measured, acc, drop, weights + centroids,
                     measured <= s.target, drop <= s.max_drop + 1e-9, host.applied(plan.allocation), plan.loss,
                     host.planner)
    out.candidates.append(cand)
    if cand.ok and best(out.candidates) is cand:
        out.chosen, out.state = cand, host.keep()
    n = len(out.candidates)
    yield Metric("auto/val_accuracy", acc, n)
    yield from _series(host, out.candidates)
    verdict = "meets both" if cand.ok else ("misses the target" if not cand.meets_target else "drops too much")
    yield Log("info" if cand.ok else "warning",
              f"candidate {n}: {host.fmt(measured)}, val accuracy {acc:.2%} (drop {drop * 100:+.2f} points, "
              f"allowed {s.max_drop * 100:.2f}), {weights + centroids} epochs: {verdict}")
    return cand


def on_one_axis(events: Iterator[Event], offset: float) -> Iterator[Event]:
    """A candidate's sub-stage events for the run: training curves continue across candidates (steps moved by
    `offset` epochs), per-step pruning metrics and layer bars are left out (the chosen allocation's come last)."""
    for e in events:
        if isinstance(e, Metric):
            if not e.name.startswith("prune/"):
                yield Metric(e.name, e.value, e.step + offset)
        elif not isinstance(e, LayerStats):
            yield e
