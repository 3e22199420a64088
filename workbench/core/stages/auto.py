"""`auto`: compress to a budget (N times smaller, or a fraction of the latency, FLOPs or parameters) while
losing at most `max_drop` of val accuracy.

The algorithms are in `core/auto/` (option tables, the knapsack solver, the accuracy-aware loop); this module
orchestrates: it measures, applies each candidate allocation through the `prune` and `quantize` stages (so
masks, codebooks and the structured-pruning transform are recorded and replay like any other stage's), fine-
tunes, checks val, and keeps the best candidate that met both the target and max_drop.
"""
from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from torch import nn

from ..auto.driver import Settings, on_one_axis, search
from ..auto.options import Allocation, OptionTable, Reference, coupled_groups, structured_options, unstructured_options, width_options
from ..auto.progress import TARGETS, Overall, describe_target, fmt_cost
from ..auto.search import PLANNERS, Calibration, closest, knapsack, per_layer, same_width
from ..auto.stage_settings import Params
from ..auto.state import State, capture, fork, restore
from ..errors import RecipeError, StageError
from ..events import Event, LayerStats, Log, Series
from ..export import ExportSource, calibration_inputs
from ..export import packed as packed_format
from ..metrics import count_params, flops_per_module
from ..pruning import structured
from ..pruning.layers import checked_layers, classifier_name, layer_stats, param_counts, prunable_layers
from ..session import Session
from . import INT8, StageKind, prune, quantize, register
from ._auto_runtime import DeployTimer, int8_refusal

DESCRIPTION = ("Make the model N times smaller (or faster, or fewer FLOPs or parameters) and lose at most max_drop "
               "of val accuracy: per-layer sensitivity and cost, the allocation with the least predicted loss "
               "under the budget, fine-tuning, and an accuracy-aware search that backs off or pushes further.")
def _path(session: Session) -> str:
    return f"stages[{session.stage_index}]"


def preflight(session: Session, p: Params) -> None:
    path, model = _path(session), session.model
    checked_layers(model, p.exclude, path, "compress")
    if not session.data.splits.get("val"):
        raise RecipeError(f"{path}: the data has no val split; auto decides on val (give the data a val_fraction)")
    if "int8" in p.methods and session.device.type != "cpu":
        raise RecipeError(f"{path}.methods: int8 runs on the CPU only; run with --device cpu")
    if "int8" in p.methods and int8_refusal(session.runtime):
        raise RecipeError(f"{path}.methods: {int8_refusal(session.runtime)}")
    if "structured" in p.methods:
        if session.record.get("frozen"):
            raise RecipeError(f"{path}.methods: this model was loaded from a frozen program and cannot be pruned "
                              f"structurally")
        example = session.example_input(1)
        try:
            structured.check_prunable(model, example, max(p.channels), [*p.exclude, classifier_name(model, example) or ""])
        except Exception as exc:  # noqa: BLE001 - BadInput with the reason
            raise RecipeError(f"{path}.methods: structured: {getattr(exc, 'message', exc)}") from None


class _Host:
    """The session side of the search (`core.auto.driver.Host`): trials on copies, applying, measuring."""

    def __init__(self, session: Session, p: Params) -> None:
        self.session, self.p = session, p
        self.planner = p.allocation            # set by the search to the planner of each candidate
        self.kind, _ = p.goal
        self.x_label = TARGETS[self.kind]
        self.structured = bool({"structured", "int8"} & set(p.methods))
        self.start = capture(session)
        self.example = session.example_input(1)
        self.ref = Reference(session.model, session.data.val, session.device)     # decisions read val, never test
        self.int8 = False
        self.timer: DeployTimer | None = None
        self.round_to: int | str = p.round_to     # `auto` measured once, on the first structured candidate
        self.members: dict[str, list[str]] = {}
        self.widths: dict[str, int] | None = None
        self.pre_cost: float | None = None
        self.overall = Overall(p.epochs, p.max_candidates)     # the stage's one forward-only progress bar
        if self.kind == "ratio":
            self.base = float(session.snapshots[0]["dense_bytes"] if session.snapshots else 4 * count_params(session.model)[0])
        elif self.kind == "latency":      # on the run's runtime, against the stage input prepared there once
            self.timer = DeployTimer(session.runtime, session.model, self.example, calibration_inputs(session.data),
                                     p.latency_threads)
            self.base = self.timer.base_ms()
        else:
            self.base = self.count(session.model)

    def cost(self, s: Session, passes: int | None = None, int8: bool | None = None) -> float:
        """The target's measure of a session's model: bytes of its packed file, latency (on the run's runtime, of
        its int8 flavour with `int8`, default: the stage's choice), FLOPs or parameters."""
        if self.kind == "ratio":
            with tempfile.TemporaryDirectory() as tmp:
                packed_format.write(ExportSource.from_session(s, 1), Path(tmp) / "trial.packed")
                return float((Path(tmp) / "trial.packed").stat().st_size)
        return self.latency(s.model, passes, int8) if self.kind == "latency" else self.count(s.model)

    def latency(self, model: nn.Module, passes: int | None = None, int8: bool | None = None) -> float:
        assert self.timer is not None           # made for a latency target
        return self.timer.ratio(model, self.int8 if int8 is None else int8, passes or self.p.latency_passes) * self.base

    def _ao(self, int8: bool) -> bool:
        """Whether int8 is applied to the torch model (eager's torch.ao), or left to the runtime's export."""
        return int8 and (self.timer is None or self.timer.ao_int8)

    def count(self, model: nn.Module) -> float:
        return float(flops_per_module(model, self.example)[0] if self.kind == "flops" else count_params(model)[1])

    def fmt(self, cost: float | None) -> str:
        return fmt_cost(self.kind, self.base, cost)

    def check_cancel(self) -> None:
        self.session.check_cancel()

    def table(self) -> Generator[Event, None, tuple[OptionTable, Calibration]]:
        """Yields Progress and Log; returns (OptionTable, Calibration)."""
        s, p = self.session, self.p
        model, example = s.model, s.example_input(1)
        classifier = classifier_name(model, example)
        layers = {n: m for n, m in prunable_layers(model).items() if n not in p.exclude}
        if not self.structured:
            bits = [None, *sorted(set(p.bits))] if "kmeans" in p.methods else [None]
            sparsities = sorted(set(p.sparsities)) if "prune" in p.methods else [0.0]
            cost = None if self.kind == "ratio" else (lambda name, w: float(w.count_nonzero()))
            table = yield from unstructured_options(model, layers, sparsities, bits, self.ref, s.seed, cost=cost,
                                                    prune_weight=p.prune_loss_weight)
            self.members = table.members
            dense = sum(o.cost for g in table.groups for o in table.options[g] if o.key == {"sparsity": 0.0, "bits": None})
            return table, Calibration(self.cost(s) - dense, 1.0, "offset")
        groups = coupled_groups(model, example, [n for n in layers if n != classifier], [classifier or "", *p.exclude]) \
            if "structured" in p.methods else {}
        measure = (lambda m: self.latency(m, 2, False)) if self.kind == "latency" else self._model_cost
        if self.kind == "latency" and p.latency_costs == "flops":     # a group's saving is about the noise of timing it
            per_flop = self.base / flops_per_module(model, example)[0]
            measure = lambda m: per_flop * flops_per_module(m, example)[0]
        start_cost = self.base if self.kind != "ratio" else self._model_cost(model)
        table = yield from structured_options(model, groups, sorted(set(p.channels)), example, self.ref, measure, start_cost)
        self.members = table.members
        scale = 1.0
        if "int8" in p.methods:
            scale = self.trial({}, int8=True) / self.base
            self.int8 = scale < 0.97
            flavour = self.timer.int8_flavour if self.timer else "static"
            yield Log("info", f"int8 ({flavour}) alone: {scale:.2f} of the latency; "
                              f"{'applied after each allocation' if self.int8 else 'no faster here: not used'}")
            scale = scale if self.int8 else 1.0
        return table, Calibration(start_cost * scale, scale, "scale")

    def _model_cost(self, model: nn.Module) -> float:
        if self.kind != "ratio":
            return self.count(model)
        trial = copy.copy(self.session)
        trial.model, trial.masks, trial.codebooks = model, {}, {}
        return self.cost(trial)

    def trial(self, allocation: Allocation, int8: bool | None = None) -> float:
        trial, use = fork(self.session, self.start), self.int8 if int8 is None else int8
        for _ in self._apply(trial, allocation, 0, 0, self._ao(use)):
            self.session.check_cancel()
        return self.cost(trial, int8=use)

    def _apply(self, s: Session, allocation: Allocation, epochs: int, centroid_epochs: int, int8: bool,
               offset: float = 0.0, goal: float | None = None) -> Iterator[Event]:
        """Apply an allocation through the prune and quantize stages; yields their events (curves from `offset`).

        With a `goal` (bytes), the bit widths are chosen again once pruning and fine-tuning are done, on the
        weights as they are then: exact bytes, and the loss where it matters."""
        p, layers = self.p, list(prunable_layers(s.model))
        common: dict[str, Any] = {"lr": p.lr, "optimizer": p.optimizer, "batch_size": p.batch_size, "lr_schedule": p.lr_schedule,
                  "weight_decay": p.weight_decay}
        if "structured" in p.methods:
            cut = {m: a["channels"] for g, a in allocation.items() for m in self.members[g] if a["channels"] > 0}
            if cut:
                yield from on_one_axis(prune.run(s, prune.Params(
                    method="l1", structured=True, scope="layer", sparsity=0.0, finetune_epochs=epochs,
                    exclude=[n for n in layers if n not in cut], overrides=cut, round_to=self.round_to, **common)), offset)
                done = s.history[-1] if s.history else {}
                self.round_to = done.get("round_to", self.round_to) if done.get("op") == "prune" else self.round_to
        else:
            sparse = {g: a["sparsity"] for g, a in allocation.items() if a.get("sparsity", 0) > 0}
            if sparse:
                steps = max(1, min(p.prune_steps, epochs)) if epochs else p.prune_steps
                yield from on_one_axis(prune.run(s, prune.Params(
                    method="magnitude", scope="layer", sparsity=max(sparse.values()), schedule="iterative",
                    steps=steps, finetune_epochs=epochs // steps, exclude=[n for n in layers if n not in sparse],
                    overrides=sparse, classifier_scale=1.0, **common)), offset)
                offset += steps * (epochs // steps)
            bits = {g: a["bits"] for g, a in allocation.items() if a.get("bits")}
            if goal is not None and "kmeans" in p.methods:
                bits = yield from self._widths(s, goal, bits)
            if bits:
                yield from on_one_axis(quantize.run(s, quantize.Params(
                    method="kmeans", bits=bits, exclude=[n for n in layers if n not in bits], max_iter=50,
                    finetune_epochs=centroid_epochs, lr=p.centroid_lr, optimizer=p.optimizer, batch_size=p.batch_size,
                    codebook="float16", biases="float16")), offset)
        if int8:
            yield from quantize.run(s, quantize.Params(method="int8_static", calib_batches=p.calib_batches))

    def _widths(self, s: Session, goal: float, bits: dict[str, int]) -> Generator[Event, None, dict[str, int]]:
        """Bit widths again, on the fine-tuned weights (exact bytes); if even the fewest bits do not fit (fine-tuning
        moved the survivors' statistics), prune a few more of the smallest survivors first."""
        for _ in range(4):
            layers = {n: m for n, m in prunable_layers(s.model).items() if n in self.members}
            table, now = width_options(s.model, layers, [None, *sorted(set(self.p.bits))], s.data.val, s.device, s.seed)
            budget = goal * 0.998 - (self.cost(s) - now)
            if self.pre_cost is None:        # what the allocation as planned would have cost: the drift
                self.pre_cost = goal * 0.998 - budget + sum(
                    next(o.cost for o in table.options[g] if o.key["bits"] == bits.get(g)) for g in table.groups)
            plan = same_width(table, budget) if self.planner == "uniform" else knapsack(table, budget)
            if plan is not None:
                break
            least = sum(min(o.cost for o in table.options[g]) for g in table.groups)
            yield from self._prune_more(s, (least - budget) / least, f"the fewest bits need {least - budget:,.0f} B more")
        else:
            return bits
        self.widths = {g: k["bits"] for g, k in plan.allocation.items() if k["bits"]}
        yield Log("info", "bit widths on the fine-tuned weights: " + ", ".join(f"{n} {self.widths.get(n, 'float')}"
                                                                               for n in table.groups))
        return self.widths

    def _prune_more(self, s: Session, fraction: float, why: str) -> Iterator[Event]:
        """Prune 1.5 x `fraction` more of the table layers' survivors (at least 2 per layer), smallest first."""
        layers = {n: m for n, m in prunable_layers(s.model).items() if n in self.members}
        nnz = {n: int(m.weight.count_nonzero()) for n, m in layers.items()}
        extra = min(sum(nnz.values()) // 2, max(math.ceil(1.5 * fraction * sum(nnz.values())), 2 * len(nnz)))
        more = {n: 1.0 - max(0, c - max(2, round(extra * c / sum(nnz.values())))) / layers[n].weight.numel()
                for n, c in nnz.items() if c > 2}
        if not more:
            return
        yield Log("info", f"{why}: pruning about {extra} more of the smallest weights")
        yield from on_one_axis(prune.run(s, prune.Params(
            method="magnitude", scope="layer", sparsity=max(more.values()), finetune_epochs=0, classifier_scale=1.0,
            exclude=[n for n in prunable_layers(s.model) if n not in more], overrides=more)), 0.0)

    def apply(self, allocation: Allocation, epochs: int, centroid_epochs: int, offset: float,
              goal: float) -> Generator[Event, None, float | None]:
        restore(self.session, self.start)
        self.widths, self.pre_cost = None, None
        if self.timer:
            self.timer.forget()
        self.overall.candidate(offset, epochs + centroid_epochs)
        yield from self._apply(self.session, allocation, epochs, centroid_epochs, self._ao(self.int8), offset, goal)
        for _ in range(8 if self.kind == "ratio" and not self.structured else 0):
            measured = self.cost(self.session)         # the header, rounding: prune the smallest survivors to fit
            if measured <= goal:
                break
            yield from self._prune_more(self.session, (measured - goal) / measured, f"{self.fmt(measured)} misses "
                                        f"{self.fmt(goal)}")
        return self.pre_cost

    def applied(self, allocation: Allocation) -> Allocation:
        """The allocation as applied: the bit widths chosen again after fine-tuning."""
        if self.widths is None:
            return allocation
        return {g: {**a, "bits": self.widths.get(g)} for g, a in allocation.items()}

    def measure(self) -> float:   # the verdict on a candidate: latency with twice the passes of a trial
        return self.cost(self.session, 2 * self.p.latency_passes)

    def accuracy(self) -> float:     # of what the runtime runs: onnxruntime's int8 file of the candidate there
        model = self.timer.scored(self.session.model, self.int8) if self.timer else self.session.model
        return self.ref.score(model)[1]

    def keep(self) -> State:
        return capture(self.session)


def run(session: Session, p: Params) -> Iterator[Event]:
    host = _Host(session, p)
    yield from host.overall.events(_search(session, p, host))


def _search(session: Session, p: Params, host: _Host) -> Iterator[Event]:
    kind, value = p.goal
    target = host.base / value if kind == "ratio" else host.base * value
    where = f" on {session.runtime}" if host.timer else ""
    yield Log("info", f"auto: {describe_target(kind, value, host.base, target)}{where}; val accuracy "
                      f"{host.ref.accuracy:.2%} at the start, at most {p.max_drop * 100:.2f} points less; "
                      f"methods {', '.join(p.methods)}")
    table, cal = yield from host.table()
    kmeans = "kmeans" in p.methods
    settings = Settings(target, host.ref.accuracy, p.max_drop, p.epochs, p.finetune_epochs,
                        p.centroid_epochs if kmeans else 0, p.push, p.step, p.min_step, p.max_level, p.retries,
                        p.max_candidates, margin=0.03 if kind == "latency" else 0.005,
                        tolerance=0.05 if kind == "latency" else 0.02, trials=6 if kind == "latency" else 4)
    rivals = (("uniform", PLANNERS["uniform"]),) if p.allocation == "best" else ()
    out = yield from search(host, table, PLANNERS["knapsack" if p.allocation == "best" else p.allocation], cal,
                            settings, rivals, "knapsack" if p.allocation == "best" else p.allocation)
    common = {"target": dict(p.target), "target_cost": target, "unit": host.x_label, "max_drop": p.max_drop,
              "methods": list(p.methods), "allocation_method": p.allocation, "split": "val",
              "solver": "dynamic programming over discretised cost (multiple-choice knapsack)",
              "baseline": {"val_accuracy": host.ref.accuracy, "cost": host.base}, "epochs_spent": out.spent,
              "candidates": [c.row(host.base if kind == "ratio" else None) for c in out.candidates],
              "option_table": table.to_json()}
    if out.chosen is None:
        restore(session, host.start)
        near = closest(out.candidates)
        found = (f"; best found: {host.fmt(near.measured)} at val accuracy {near.val_accuracy:.2%} (drop "
                 f"{near.drop * 100:.2f} points)" if near else "; no allocation of the options reached it")
        session.publish("auto", {**common, "chosen": None})
        raise StageError(f"auto: nothing met both {host.fmt(target)} and a val drop of at most {p.max_drop * 100:.2f} "
                         f"points in {len(out.candidates)} candidates ({out.spent} epochs){found}")
    chosen = out.chosen
    assert out.state is not None and chosen.measured is not None    # the search keeps the chosen one's state and cost
    restore(session, out.state)
    index = out.candidates.index(chosen)
    yield Series("auto/chosen", (chosen.measured,), (chosen.val_accuracy,), x_label=host.x_label, y_label="val accuracy")
    allocation = per_layer(chosen.allocation, host.members)
    stats = layer_stats(session.model, param_counts(host.start["model"]))
    yield LayerStats({n: {**stats.get(n, {}), **{("bits" if k == "bits" else f"planned_{k}"): float(v)
                                                 for k, v in a.items() if v is not None}} for n, a in allocation.items()})
    session.publish("auto", {**common, "chosen": index, "measured": chosen.measured, "val_accuracy": chosen.val_accuracy,
                             "drop": chosen.drop, "allocation": allocation, "int8": host.int8,
                             **({"runtime": session.runtime} if host.timer else {})})
    claims: dict[str, Any] = {}
    if host.timer:          # A/B/A/B on the run's runtime, the int8 flavour it runs where the stage chose int8
        claims["latency_ratio"] = host.timer.stats(session.model, host.int8)
        yield Log("info", host.timer.describe(claims["latency_ratio"], p.goal[1]))
    session.note(op="auto", target=dict(p.target), max_drop=p.max_drop, allocation=allocation, int8=host.int8,
                 candidates=len(out.candidates), chosen=index, measured=chosen.measured, **claims)
    yield Log("info", f"chose candidate {index + 1} of {len(out.candidates)}: {host.fmt(chosen.measured)}, val accuracy "
                      f"{chosen.val_accuracy:.2%} (drop {chosen.drop * 100:.2f} points), {out.spent} epochs used")


def leaves(p: Params, state: str, runtime: str = "eager") -> str:
    """The order check: with int8 among its methods the stage may leave a torch.ao int8 model, in eager; on
    onnxruntime its int8 is onnxruntime's own, made at export, and the model stays float."""
    return INT8 if "int8" in p.methods and runtime == "eager" else state


STAGE = register(StageKind(kind="auto", title="Compress to a budget", description=DESCRIPTION, params=Params,
                           run=run, preflight=preflight, leaves=leaves))
