"""`dynamic`: computation that adapts at inference.

early_exit: heads after intermediate layers, trained with the sum of all exits' losses; then, for each
confidence threshold, val accuracy (and test accuracy) against the average compute per sample (FLOPs and batch-1 latency
measured with real early exiting). slimmable: one set of weights trained to run at several widths;
then accuracy, FLOPs and latency of each width, measured on the physically narrowed network, and the
model kept at `deploy_width`."""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..dynamic import early_exit as ee
from ..dynamic import slimmable as slim
from ..errors import BadInput, RecipeError
from ..events import Event, Log, Progress, Series
from ..metrics import accuracy, denormals_flushed, flops_per_module, is_quantized, latency_ms
from ..params import param
from ..pruning import structured
from ..pruning.layers import classifier_name, unknown_layer
from ..training import OPTIMIZERS, SCHEDULES, fit
from . import StageKind, register

if TYPE_CHECKING:
    from ..session import Session

KIND = "dynamic"
DESCRIPTION = ("Early exits: classifier heads after intermediate layers, trained with the sum of all exits' losses; "
               "a sample leaves at the first head confident enough, so easy samples cost less. Slimmable: one "
               "network trained to run at several widths, kept at the width you deploy. Both report accuracy "
               "against compute.")
METHODS = ["early_exit", "slimmable"]


@dataclass
class Params:
    method: str = param("early_exit", "early_exit: classifier heads after intermediate layers. slimmable: the "
                        "network learns to run with only the first fraction of every layer's channels.",
                        choices=METHODS)
    exits: int | list[str] = param(2, "early_exit: where the heads go: layer names, or a count spread over the "
                                   "model's blocks.", min=1, max=16, when={"method": "early_exit"}, max_items=16)
    thresholds: list[float] = param([0.5, 0.8, 0.9, 0.95, 0.99, 0.999], "early_exit: confidence (top softmax "
                                    "probability) a head needs to let a sample leave; one accuracy/compute point "
                                    "per threshold.", min=0.0, max=1.0, when={"method": "early_exit"},
                                    max_items=100)
    widths: list[float] = param([0.25, 0.5, 0.75, 1.0], "slimmable: width multipliers trained together (1.0 is "
                                "always included); one accuracy/compute point per width.", min=0.0, max=1.0,
                                min_exclusive=True, when={"method": "slimmable"}, max_items=16)
    deploy_width: float = param(1.0, "slimmable: the width the model keeps after the stage; channels beyond it are "
                                "physically removed (one of widths).", min=0.0, max=1.0, min_exclusive=True,
                                step=0.05, when={"method": "slimmable"})
    epochs: int = param(5, "Training epochs for the heads (and the backbone, see train_backbone).", min=0, max=1000)
    lr: float = param(1e-3, "Learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    optimizer: str = param("adam", "Optimiser.", choices=OPTIMIZERS)
    schedule: str = param("constant", "Learning-rate schedule.", choices=SCHEDULES, advanced=True)
    batch_size: int = param(64, "Samples per step.", min=1, max=4096, advanced=True)
    train_backbone: bool = param(True, "true: the whole network learns from all exits' losses. false: only the heads "
                                 "learn, so the final classifier's accuracy stays exactly as it was.",
                                 when={"method": "early_exit"})
    latency_samples: int = param(100, "early_exit: test samples timed one by one (batch 1) per threshold.", min=0,
                                 max=10000, advanced=True, when={"method": "early_exit"})

    def validate(self) -> str | None:
        if self.method == "slimmable" and self.deploy_width not in {*self.widths, 1.0}:
            return f"deploy_width: {self.deploy_width} is not one of the trained widths {sorted({*self.widths, 1.0})}"
        return None


def _path(session: Session) -> str:
    return f"stages[{session.stage_index}]"


def _layers(session: Session, p: Params) -> list[str]:
    model, path, example = session.model, _path(session), session.example_input(1)
    if isinstance(p.exits, int):
        try:
            return ee.default_exits(model, example, p.exits)
        except BadInput as exc:
            raise RecipeError(f"{path}.exits: {exc.message}") from None
    names = [n for n, _ in model.named_modules() if n]
    for i, name in enumerate(p.exits):
        if name not in names:
            raise RecipeError(f"{path}.exits[{i}]: {name!r}: {unknown_layer(name, names)}")
    info = ee.probe(model, example, list(p.exits))
    for i, name in enumerate(p.exits):
        problem = ee.check_exit(name, *info[name])
        if problem:
            raise RecipeError(f"{path}.exits[{i}]: {problem}")
    return list(p.exits)


def preflight(session: Session, p: Params) -> None:
    path = _path(session)
    if session.record.get("frozen") or is_quantized(session.model):
        raise RecipeError(f"{path}.method: dynamic computation needs a float model that can be changed (use it "
                          f"before quantizing; not on a frozen program)")
    recipe = session.recipe
    earlier = [s for s in recipe.stages[:session.stage_index]
               if s.enabled and s.kind == KIND and s.params.method == "early_exit"] if recipe else []
    if hasattr(session.model, ee.HEADS) or earlier:
        where = " (from an earlier dynamic stage)" if earlier else ""
        if p.method == "early_exit":
            raise RecipeError(f"{path}.method: the model already has early exits{where}")
        raise RecipeError(f"{path}.method: slimmable widths cannot be trained with early-exit heads attached{where}; "
                          f"make the network slimmable first, then add exits")
    if p.method == "early_exit":
        _layers(session, p)
        return
    try:
        structured.check_prunable(session.model, session.example_input(1), 1.0 - min(p.widths), _ignored(session))
    except BadInput as exc:
        raise RecipeError(f"{path}.method: slimmable widths need structured pruning: {exc.message}") from None


def _ignored(session: Session) -> list[str]:
    """Layers whose outputs keep their width: the final classifier (its outputs are the classes)."""
    name = classifier_name(session.model, session.example_input(1))
    return [name] if name else []


def run(session: Session, p: Params) -> Iterator[Event]:
    if p.method == "slimmable":
        yield from _run_slimmable(session, p)
        return
    model, data = session.model, session.data
    layers = _layers(session, p)
    session.set_model(model, ee.attach(model, session.example_input(2), layers, data.num_classes))
    model = session.model
    yield Log("info", f"early exits after {', '.join(layers)}")
    backbone: list[nn.Module] = [] if p.train_backbone else [m for n, m in model.named_children() if n != ee.HEADS]
    frozen = [t for m in backbone for t in m.parameters() if t.requires_grad]
    for t in frozen:
        t.requires_grad_(False)
    try:
        with ee.Exits(model, layers) as exits:
            def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                exits.outputs.clear()
                out = m(x)
                return F.cross_entropy(out, y) + sum(F.cross_entropy(o, y) for o in exits.outputs)
            yield from fit(session, p.epochs, p.lr, p.optimizer, p.schedule, 0.0, p.batch_size, loss_fn=loss_fn,
                           label="exits", eval_modules=backbone)
    finally:
        for t in frozen:
            t.requires_grad_(True)
    yield Progress(0, 1, "measuring exits")
    result = _trade_off(session, layers, sorted(p.thresholds), p.latency_samples)
    points = result["thresholds"]
    yield Series("early_exit/accuracy", tuple(r["expected_mflops"] for r in points), tuple(r["accuracy"] for r in points),
                 x_label="expected MFLOPs per sample (exit shares x measured per-exit FLOPs)", y_label="accuracy")
    for r in points:
        yield Log("info", f"threshold {r['threshold']:g}: accuracy {r['accuracy']:.4f}, {r['expected_mflops']:.3f} expected MFLOPs "
                          f"({r['flops_ratio']:.2f}x of all-exits), {r['latency_ms']:.3f} ms, exits taken "
                          f"{', '.join(f'{s:.0%}' for s in r['exit_share'])}")
    session.publish("early_exit", result)
    session.note(op="early_exit", exits=layers, train_backbone=p.train_backbone,
                 exit_accuracy=result["exit_accuracy"])


def _exit_probs(model: nn.Module, layers: list[str], batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(confidence, prediction) of every exit and the final classifier for every sample, and the labels."""
    probs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    with torch.no_grad(), ee.Exits(model, layers) as exits:
        for x, y in batches:
            exits.outputs.clear()
            final = model(x.to(device))
            probs.append(torch.stack([F.softmax(o, 1) for o in [*exits.outputs, final]]).cpu())
            labels.append(y)
    conf, pred = torch.cat(probs, 1).max(2)                    # [exits + 1, N]
    return conf, pred, torch.cat(labels)


def _exiting(conf: torch.Tensor, pred: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(the exit each sample takes, its prediction): the first exit confident enough, else the final classifier."""
    confident = torch.cat([conf[:-1] >= threshold, torch.ones(1, conf.shape[1], dtype=torch.bool)])
    taken = confident.float().argmax(0)
    return taken, pred.gather(0, taken[None]).squeeze(0)


def _trade_off(session: Session, layers: list[str], thresholds: list[float], latency_samples: int) -> dict[str, Any]:
    """Per exit: accuracy alone and measured FLOPs; per threshold: accuracy, *expected* FLOPs per sample (the
    share of samples leaving at each exit times that exit's measured FLOPs) and measured batch-1 latency with
    real exiting. Accuracies and shares are on val, where a threshold is chosen; `test_accuracy` is reported."""
    model, device = session.model.eval(), session.device
    conf, pred, y = _exit_probs(model, layers, session.data.val, device)
    t_conf, t_pred, t_y = _exit_probs(model, layers, session.data.test, device)
    costs = ee.exit_flops(model, layers, session.example_input(1))
    singles = _single_inputs(session, latency_samples)
    rows: list[dict[str, Any]] = []
    for t in thresholds:
        taken, chosen = _exiting(conf, pred, t)
        share = torch.bincount(taken, minlength=len(layers) + 1).float() / len(y)
        flops = float(sum(share[i] * costs[i] for i in range(len(costs))))
        test_chosen = _exiting(t_conf, t_pred, t)[1]
        rows.append({"threshold": t, "accuracy": float((chosen == y).float().mean()),
                     "test_accuracy": float((test_chosen == t_y).float().mean()), "expected_mflops": flops / 1e6,
                     "flops_ratio": flops / costs[-1], "exit_share": [float(s) for s in share],
                     "latency_ms": _latency(model, layers, singles, t)})
    return {"split": "val", "exits": layers, "exit_accuracy": [float((pred[i] == y).float().mean()) for i in range(len(pred))],
            "exit_mflops": [c / 1e6 for c in costs], "thresholds": rows}


def _single_inputs(session: Session, samples: int) -> list[torch.Tensor]:
    """The first `samples` val inputs, one per batch of 1, on the session's device."""
    inputs: list[torch.Tensor] = []
    for x, _ in session.data.val:
        if len(inputs) >= samples:
            break
        inputs.extend(torch.split(x, 1))
    return [x.to(session.device) for x in inputs[:samples]]


def _latency(model: nn.Module, layers: list[str], inputs: list[torch.Tensor], threshold: float) -> float:
    """Mean batch-1 wall time over `inputs` with real early exiting."""
    if not inputs:
        return float("nan")
    times: list[float] = []
    with denormals_flushed(), torch.inference_mode(), ee.Exits(model, layers, threshold=threshold) as exits:
        for x in inputs:
            t0 = time.perf_counter()
            exits.run(x)
            times.append(time.perf_counter() - t0)
    return statistics.mean(times) * 1000.0


def _run_slimmable(session: Session, p: Params) -> Iterator[Event]:
    model, data, device = session.model, session.data, session.device
    example, ignored = session.example_input(1), _ignored(session)
    widths = sorted({*p.widths, 1.0}, reverse=True)
    yield Log("info", f"slimmable widths {', '.join(f'{w:g}' for w in widths)}: planning channels with torch-pruning")
    plan = slim.plan(model, example, widths, ignored)
    with slim.WidthMasks(model, plan) as masks:
        def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            total: torch.Tensor | float = 0.0
            for w in widths:               # the sandwich rule: every width learns at every step
                masks.width = w
                total = total + F.cross_entropy(m(x), y)
            masks.width = 1.0
            return cast(torch.Tensor, total)      # widths holds 1.0 at least: a sum of losses
        yield from fit(session, p.epochs, p.lr, p.optimizer, p.schedule, 0.0, p.batch_size, loss_fn=loss_fn,
                       label="slimmable")
    rows: list[dict[str, Any]] = []
    for i, w in enumerate(widths):
        session.check_cancel()
        yield Progress(i, len(widths), f"measuring width {w:g}")
        narrow = _at_width(session, model, w, ignored)
        flops, _ = flops_per_module(narrow, example)
        rows.append({"width": w, "accuracy": accuracy(narrow, data.val, device),
                     "test_accuracy": accuracy(narrow, data.test, device), "mflops": flops / 1e6,
                     "params": sum(t.numel() for t in narrow.parameters()),
                     "latency_ms": latency_ms(narrow, example.cpu() if device.type == "cpu" else example)})
        yield Log("info", f"width {w:g}: accuracy {rows[-1]['accuracy']:.4f}, {rows[-1]['mflops']:.3f} MFLOPs, "
                          f"{rows[-1]['params']:,} parameters, {rows[-1]['latency_ms']:.3f} ms")
    yield Series("slimmable/accuracy", tuple(r["mflops"] for r in rows), tuple(r["accuracy"] for r in rows),
                 x_label="MFLOPs per sample", y_label="accuracy")
    if p.deploy_width < 1.0:
        session.set_model(model, slim.slice_to(model, example, p.deploy_width, ignored))
    slim.calibrate_bn(session.model, data.calib, device)
    result = {"split": "val", "widths": rows, "deploy_width": p.deploy_width}
    session.publish("slimmable", result)
    session.note(op="slimmable", widths=widths, deploy_width=p.deploy_width,
                 accuracy={f"{r['width']:g}": r["accuracy"] for r in rows})


def _at_width(session: Session, model: nn.Module, width: float, ignored: list[str]) -> nn.Module:
    """A copy of the model narrowed to `width`, its batch norms calibrated on the calibration split."""
    import copy
    narrow = copy.deepcopy(model)
    if width < 1.0:
        slim.slice_to(narrow, session.example_input(1), width, ignored)
    slim.calibrate_bn(narrow, session.data.calib, session.device)
    return narrow.eval()


STAGE = register(StageKind(kind=KIND, title="Dynamic computation",
                           description=DESCRIPTION, params=Params, run=run, preflight=preflight))
