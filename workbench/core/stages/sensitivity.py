"""`sensitivity`: how much each layer tolerates pruning, alone; curves of accuracy against sparsity.

Changes nothing. The table goes to `session.extra["sensitivity"]` (saved with the next snapshot)
and to `sensitivity.json` in the run's output folder.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from ..errors import RecipeError
from ..events import Event, Log, Progress, Series
from ..metrics import accuracy
from ..params import param
from ..pruning.layers import classifier_name, prunable_layers, unknown_layer
from ..pruning.sensitivity import structured_point, unstructured_point
from . import StageKind, register

if TYPE_CHECKING:
    from ..session import Session

DESCRIPTION = ("Prune each layer alone at several sparsities (on a copy) and measure val accuracy: one curve "
               "per layer, to choose per-layer overrides. The model is left unchanged.")


@dataclass
class Params:
    sparsities: list[float] = param([0.25, 0.5, 0.75, 0.9], "Sparsities to try for each layer (fraction of its "
                                    "weights, or of its output channels when structured).", min=0.0, max=1.0,
                                    max_exclusive=True, max_items=100)
    structured: bool = param(False, "false: zero the layer's smallest weights. true: remove its lowest-L1 output "
                             "channels (and what depends on them).")
    layers: list[str] = param([], "Layers to analyse (empty: every prunable layer; structured: all but the final "
                              "classifier).", layers=True)

    def validate(self) -> str | None:
        if not self.sparsities:
            return "sparsities: give at least one sparsity"
        return None


def _targets(session: Session, p: Params) -> list[str]:
    names = list(prunable_layers(session.model))
    if p.layers:
        return list(p.layers)
    if p.structured:
        classifier = classifier_name(session.model, session.example_input(1))
        return [n for n in names if n != classifier]
    return names


def preflight(session: Session, p: Params) -> None:
    path = f"stages[{session.stage_index}]"
    names = list(prunable_layers(session.model))
    for i, name in enumerate(p.layers):
        if name not in names:
            raise RecipeError(f"{path}.layers[{i}]: {name!r}: {unknown_layer(name, names)}")
    if p.structured and p.layers:
        classifier = classifier_name(session.model, session.example_input(1))
        if classifier in p.layers:
            raise RecipeError(f"{path}.layers[{p.layers.index(classifier)}]: {classifier} is the final classifier; "
                              f"its outputs (the classes) cannot be removed")


def run(session: Session, p: Params) -> Iterator[Event]:
    model, val, device = session.model.eval(), session.data.val, session.device   # decisions read val, never test
    example = session.example_input(1)
    layers = prunable_layers(model)
    targets = _targets(session, p)
    sparsities = sorted(p.sparsities)
    baseline = accuracy(model, val, device)

    def evaluate(m: nn.Module) -> float:
        return accuracy(m, val, device)

    table: dict[str, list[float]] = {}
    total, done = len(targets) * len(sparsities), 0
    for name in targets:
        curve: list[float] = []
        for s in sparsities:
            yield Progress(done, total, f"{name} at {s:.0%}")
            curve.append(structured_point(model, name, s, example, evaluate) if p.structured
                         else unstructured_point(model, layers[name], s, evaluate))
            done += 1
        table[name] = curve
        yield Series(f"sensitivity/{name}", tuple(sparsities), tuple(curve), x_label="sparsity", y_label="accuracy")
    yield Progress(total, total, "sensitivity done")
    result = {"structured": p.structured, "split": "val", "baseline_accuracy": baseline, "sparsities": sparsities,
              "layers": table}
    session.publish("sensitivity", result)
    worst = min(table, key=lambda n: table[n][-1]) if table else None
    if worst:
        yield Log("info", f"most sensitive layer at {sparsities[-1]:.0%}: {worst} ({table[worst][-1]:.2%} accuracy, "
                          f"baseline {baseline:.2%})")


STAGE = register(StageKind(kind="sensitivity", title="Sensitivity analysis",
                           description=DESCRIPTION, params=Params, run=run, changes_model=False, preflight=preflight))
