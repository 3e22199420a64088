"""`restructure`: change the architecture while keeping what the layers compute, then (optionally) fine-tune.

lowrank: truncated SVD of Linear and convolution weights; depthwise: a k x k convolution becomes a
depthwise k x k plus a pointwise 1x1; fold_bn: batch norms folded into the preceding convolutions.
The algorithms live in `core/restructure/`; each records a replayable transform, so snapshots reload.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput, RecipeError
from ..events import Event, LayerStats, Log, Metric
from ..limits import MAX_LAYER_SIZE
from ..metrics import accuracy, is_quantized
from ..params import param
from ..pruning.layers import classifier_name, layer_stats, unknown_layer
from ..restructure import fold_bn
from ..restructure.apply import eligible_layers, restructure
from ..training import OPTIMIZERS, SCHEDULES, fit
from . import StageKind, register

if TYPE_CHECKING:
    from ..session import Session

DESCRIPTION = ("Make layers cheaper by changing their structure: low-rank factorisation (truncated SVD), "
               "depthwise separable convolutions, or batch-norm folding; then fine-tune to recover accuracy.")
METHODS = ["lowrank", "depthwise", "fold_bn"]


def _check_rank(value: object) -> str | None:
    if isinstance(value, float) and not 0.0 < value <= 1.0:
        return f"a fraction of the full rank must be in (0, 1], got {value}"
    if isinstance(value, int) and value < 1:
        return f"a rank must be at least 1, got {value}"
    return None


@dataclass
class Params:
    method: str = param("lowrank", "lowrank: W (out x in) becomes two factors of rank r (truncated SVD). "
                        "depthwise: each k x k convolution becomes depthwise k x k + pointwise 1x1 (cost ratio "
                        "1/out + 1/k^2). fold_bn: batch norms folded into the convolutions before them (exact).",
                        choices=METHODS)
    rank: int | float = param(0.25, "lowrank: the rank kept, as a number (e.g. 16) or a fraction of each layer's "
                              "full rank (e.g. 0.25).", check=_check_rank, when={"method": "lowrank"},
                              max=MAX_LAYER_SIZE)
    energy: float = param(0.0, "lowrank: if above 0, choose each layer's rank as the smallest that keeps this "
                          "fraction of the sum of squared singular values (overrides rank).", min=0.0, max=1.0,
                          step=0.01, when={"method": "lowrank"})
    layers: list[str] = param([], "Layers to change (default: every eligible layer except the final classifier; "
                              "lowrank skips layers the factorisation would not make smaller).", layers=True,
                              when={"method": ["lowrank", "depthwise"]})
    finetune_epochs: int = param(0, "Fine-tuning epochs afterwards (0: none).", min=0, max=1000)
    lr: float = param(1e-3, "Fine-tuning learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    optimizer: str = param("adam", "Fine-tuning optimiser.", choices=OPTIMIZERS)
    batch_size: int = param(64, "Fine-tuning samples per step.", min=1, max=4096, advanced=True)
    schedule: str = param("constant", "Fine-tuning learning-rate schedule.", choices=SCHEDULES, advanced=True)


def _path(session: Session) -> str:
    return f"stages[{session.stage_index}]"


def _targets(session: Session, p: Params) -> list[str]:
    """The layers the method will change (checked names, or the default selection)."""
    model, path = session.model, _path(session)
    modules = dict(model.named_modules())
    candidates = eligible_layers(model, p.method)
    if p.layers:
        for i, name in enumerate(p.layers):
            if name not in modules:
                raise RecipeError(f"{path}.layers[{i}]: {name!r}: {unknown_layer(name, candidates)}")
            if name not in candidates:
                kind = "Linear or convolution (groups 1)" if p.method == "lowrank" else "k x k convolution (k > 1, groups 1)"
                raise RecipeError(f"{path}.layers[{i}]: {name!r} is a {type(modules[name]).__name__}; "
                                  f"{p.method} needs a {kind}")
        return list(p.layers)
    classifier = classifier_name(model, session.example_input(1))
    return [n for n in candidates if n != classifier]


def preflight(session: Session, p: Params) -> None:
    path = _path(session)
    if session.record.get("frozen"):
        raise RecipeError(f"{path}.method: this model was loaded from a frozen program and cannot be restructured")
    if is_quantized(session.model):
        raise RecipeError(f"{path}.method: the model is int8; restructure before quantizing")
    if p.method == "fold_bn":
        if p.layers:
            raise RecipeError(f"{path}.layers: fold_bn folds every convolution + batch-norm pair; leave layers empty")
        try:
            pairs = fold_bn.find_pairs(session.model)
        except BadInput as exc:
            raise RecipeError(f"{path}.method: {exc.message}") from None
        if not pairs:
            raise RecipeError(f"{path}.method: the model has no convolution followed by a batch norm to fold")
        return
    if not _targets(session, p):
        raise RecipeError(f"{path}.layers: the model has no layer that {p.method} can change")


def run(session: Session, p: Params) -> Iterator[Event]:
    model = session.model
    before_params = sum(t.numel() for t in model.parameters())
    acc0 = accuracy(model, session.data.val, session.device)
    transform, changed = restructure(model, p.method, [] if p.method == "fold_bn" else _targets(session, p),
                                     p.rank, p.energy or None, skip_growing=not p.layers,
                                     between=session.check_cancel)
    for name, what in changed.items():
        yield Log("info", f"{name}: {what}")
    if not changed:
        raise RecipeError(f"{_path(session)}.rank: no layer gets smaller at this rank; lower rank or energy")
    session.set_model(model, transform)
    after_params = sum(t.numel() for t in session.model.parameters())
    acc1 = accuracy(session.model, session.data.val, session.device)
    yield Metric("restructure/accuracy", acc1, 0)
    yield LayerStats(layer_stats(session.model, None))
    yield Log("info", f"{p.method}: {len(changed)} layer(s), parameters {before_params:,} -> {after_params:,}, "
                      f"accuracy {acc0:.4f} -> {acc1:.4f} before fine-tuning")
    yield from fit(session, p.finetune_epochs, p.lr, p.optimizer, p.schedule, 0.0, p.batch_size, label="finetune")
    session.note(op="restructure", method=p.method, layers=changed, params_before=before_params,
                 params_after=after_params, accuracy_before=acc0, accuracy_restructured=acc1)


STAGE = register(StageKind(kind="restructure", title="Restructure",
                           description=DESCRIPTION, params=Params, run=run, preflight=preflight))
