"""`dynamic`: early exits. Heads after intermediate layers, trained with the sum of all exits' losses;
then, for each confidence threshold, test accuracy against the average compute per sample (FLOPs and
batch-1 latency measured with real early exiting)."""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from ..dynamic import early_exit as ee
from ..errors import BadInput, RecipeError
from ..events import Log, Progress, Series
from ..io import atomic_write_text
from ..params import param
from ..pruning.layers import unknown_layer
from ..training import OPTIMIZERS, SCHEDULES, fit

KIND = "dynamic"
TITLE = "Early exits"
DESCRIPTION = ("Dynamic computation: add classifier heads after intermediate layers and train them with the sum "
               "of all exits' losses; at inference a sample leaves at the first head confident enough, so easy "
               "samples cost less. Reports accuracy against average compute for each threshold.")


@dataclass
class Params:
    method: str = param("early_exit", "early_exit: classifier heads after intermediate layers.", choices=["early_exit"])
    exits: int | list[str] = param(2, "Where the heads go: layer names, or a count spread over the model's blocks.",
                                   min=1, max=16)
    thresholds: list[float] = param([0.5, 0.8, 0.9, 0.95, 0.99, 0.999], "Confidence (top softmax probability) a "
                                    "head needs to let a sample leave; one accuracy/compute point per threshold.",
                                    min=0.0, max=1.0)
    epochs: int = param(5, "Training epochs for the heads (and the backbone, see train_backbone).", min=0, max=1000)
    lr: float = param(1e-3, "Learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    optimizer: str = param("adam", "Optimiser.", choices=OPTIMIZERS)
    schedule: str = param("constant", "Learning-rate schedule.", choices=SCHEDULES, advanced=True)
    batch_size: int = param(64, "Samples per step.", min=1, max=4096, advanced=True)
    train_backbone: bool = param(True, "true: the whole network learns from all exits' losses. false: only the heads "
                                 "learn, so the final classifier's accuracy stays exactly as it was.")
    latency_samples: int = param(100, "Test samples timed one by one (batch 1) per threshold.", min=0, max=10000,
                                 advanced=True)


def _path(session) -> str:
    return f"stages[{session.stage_index}]"


def _layers(session, p: Params) -> list[str]:
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


def preflight(session, p: Params) -> None:
    path = _path(session)
    if session.record.get("frozen") or any(getattr(t, "is_quantized", False) for t in session.model.state_dict().values()):
        raise RecipeError(f"{path}.method: early exits need a float model that can be changed (add them before "
                          f"quantizing; not on a frozen program)")
    recipe = getattr(session, "recipe", None)
    earlier = [s for s in recipe.stages[:session.stage_index] if s.enabled and s.kind == KIND] if recipe else []
    if hasattr(session.model, ee.HEADS) or earlier:
        raise RecipeError(f"{path}.method: the model already has early exits" +
                          (" (from an earlier dynamic stage)" if earlier else ""))
    _layers(session, p)


def run(session, p: Params) -> Iterator:
    model, data = session.model, session.data
    layers = _layers(session, p)
    session.set_model(model, ee.attach(model, session.example_input(2), layers, data.num_classes))
    model = session.model
    yield Log("info", f"early exits after {', '.join(layers)}")
    backbone = [] if p.train_backbone else [m for n, m in model.named_children() if n != ee.HEADS]
    frozen = [t for m in backbone for t in m.parameters() if t.requires_grad]
    for t in frozen:
        t.requires_grad_(False)
    try:
        with ee.Exits(model, layers) as exits:
            def loss_fn(m, x, y):
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
    yield Series("early_exit/accuracy", tuple(r["mflops"] for r in points), tuple(r["accuracy"] for r in points),
                 x_label="average MFLOPs per sample", y_label="accuracy")
    for r in points:
        yield Log("info", f"threshold {r['threshold']:g}: accuracy {r['accuracy']:.4f}, {r['mflops']:.3f} MFLOPs "
                          f"({r['flops_ratio']:.2f}x of all-exits), {r['latency_ms']:.3f} ms, exits taken "
                          f"{', '.join(f'{s:.0%}' for s in r['exit_share'])}")
    session.extra["early_exit"] = result
    if session.out_dir is not None:
        session.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(session.out_dir / "early_exit.json", json.dumps(result, indent=2))
    session.note(op="early_exit", exits=layers, train_backbone=p.train_backbone,
                 exit_accuracy=result["exit_accuracy"])


def _trade_off(session, layers: list[str], thresholds: list[float], latency_samples: int) -> dict:
    """Per exit: accuracy alone; per threshold: accuracy, average FLOPs and measured batch-1 latency."""
    model, device = session.model.eval(), session.device
    probs, labels = [], []
    with torch.no_grad(), ee.Exits(model, layers) as exits:
        for x, y in session.data.test:
            exits.outputs.clear()
            final = model(x.to(device))
            probs.append(torch.stack([F.softmax(o, 1) for o in [*exits.outputs, final]]).cpu())
            labels.append(y)
    p, y = torch.cat(probs, 1), torch.cat(labels)              # [exits + 1, N, classes], [N]
    conf, pred = p.max(2)
    costs = ee.exit_flops(model, layers, session.example_input(1))
    rows = []
    for t in thresholds:
        confident = conf[:-1] >= t
        confident = torch.cat([confident, torch.ones(1, len(y), dtype=torch.bool)])
        taken = confident.float().argmax(0)                    # the first exit confident enough (else the final)
        chosen = pred.gather(0, taken[None]).squeeze(0)
        share = torch.bincount(taken, minlength=len(layers) + 1).float() / len(y)
        flops = float(sum(share[i] * costs[i] for i in range(len(costs))))
        rows.append({"threshold": t, "accuracy": float((chosen == y).float().mean()), "mflops": flops / 1e6,
                     "flops_ratio": flops / costs[-1], "exit_share": [float(s) for s in share],
                     "latency_ms": _latency(model, layers, session, t, latency_samples)})
    return {"exits": layers, "exit_accuracy": [float((pred[i] == y).float().mean()) for i in range(len(pred))],
            "exit_mflops": [c / 1e6 for c in costs], "thresholds": rows}


def _latency(model, layers: list[str], session, threshold: float, samples: int) -> float:
    """Mean batch-1 wall time over the first `samples` test inputs with real early exiting."""
    if samples <= 0:
        return float("nan")
    inputs = []
    for x, _ in session.data.test:
        inputs.extend(x.split(1))
        if len(inputs) >= samples:
            break
    times = []
    flushed = torch.set_flush_denormal(True)
    try:
        with torch.inference_mode(), ee.Exits(model, layers, threshold=threshold) as exits:
            for x in inputs[:samples]:
                x = x.to(session.device)
                t0 = time.perf_counter()
                exits.run(x)
                times.append(time.perf_counter() - t0)
    finally:
        if flushed:
            torch.set_flush_denormal(False)
    return statistics.mean(times) * 1000.0
