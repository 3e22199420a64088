"""The numbers recorded for every snapshot (the rows of report.json)."""
from __future__ import annotations

import copy
import time
from collections.abc import Generator, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import metrics, runtimes
from .events import Progress
from .latency import latency_stats
from .snapshots import smallest_file

if TYPE_CHECKING:
    from .session import Session


Accuracies = tuple[float, float | None]     # (test, val); val None without a val split


def cpu_copy(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return model if device.type == "cpu" else copy.deepcopy(model).cpu()


def measure_accuracy(session: Session, label: str) -> Generator[Progress, None, Accuracies]:
    """(test, val) accuracy of the session's model: a Progress per evaluated batch ("LABEL: val 12/40 batches"),
    and cancellation checked between batches, so a long measurement shows that it moves and Stop ends it."""
    splits = [("test", session.data.test)]
    if session.data.splits["val"]:
        splits.append(("val", session.data.val))
    sizes = [_batches(loader) for _, loader in splits]
    known = None not in sizes
    total = float(sum(n or 0 for n in sizes)) if known else 0.0
    before, results = 0, []
    yield Progress(0, total or 1, label)
    for (name, loader), size in zip(splits, sizes):
        steps = metrics.accuracy_steps(session.model, loader, session.device)
        while True:
            session.check_cancel()
            try:
                done, _ = next(steps)
            except StopIteration as end:
                results.append(float(end.value))
                break
            of = f"/{size}" if size is not None else ""
            yield Progress(before + done if known else 0, total or 1, f"{label}: {name} {done}{of} batches")
        before += size or 0
    session.check_cancel()
    return results[0], (results[1] if len(results) > 1 else None)


def _batches(loader: object) -> int | None:
    if not isinstance(loader, Sized):
        return None
    try:
        return len(loader)
    except TypeError:             # a DataLoader over an iterable data set has no length
        return None


def measure(session: Session, folder: Path, baseline_dense_bytes: int | None,
            accuracies: Accuracies | None = None) -> dict[str, Any]:
    """Accuracy, sizes, FLOPs and latency of the session's model; writes the compressed file into `folder`.
    `accuracies` (test, val) when `measure_accuracy` has measured them already (with its progress).

    Cancellation is checked between the measurements, so Stop does not wait for all of them.
    """
    model = session.model
    example = session.example_input(1)
    rows = metrics.layer_table(model, example)
    flops_total, _ = metrics.flops_per_module(model, example)
    summary = metrics.summarize(rows, flops_total)
    dense = baseline_dense_bytes if baseline_dense_bytes is not None else summary["dense_bytes"]
    session.check_cancel()
    compressed = smallest_file(session, folder, session.check_cancel)
    session.check_cancel()
    if accuracies is None:
        acc = metrics.accuracy(model, session.data.test, session.device)
        val = metrics.accuracy(model, session.data.val, session.device) if session.data.splits["val"] else None
    else:
        acc, val = accuracies
    session.check_cancel()
    latency, latency_why = measure_latency(session, example)
    eager = latency["eager"]
    nbytes = compressed["bytes"]
    out = {
        "accuracy": acc,
        "val_accuracy": val,
        "params": summary["params"],
        "nonzero_params": summary["nonzero_params"],
        "sparsity": summary["sparsity"],
        "weights": summary["weights"],
        "nonzero_weights": summary["nonzero_weights"],
        "flops": summary["flops"],
        "dense_bytes": dense,
        "compressed_bytes": nbytes,
        "compressed_format": compressed["format"],
        "compression_ratio": dense / nbytes if nbytes else None,
        "latency_ms": eager["median_ms"],
        "latency": latency,
        **({"latency_why": latency_why} if latency_why else {}),
        "layers": {r.name: {"params": r.params, "nonzero_params": r.nonzero_params, "sparsity": r.sparsity,
                            "flops": r.flops, "shape": r.shape} for r in rows},
        "measured_at": time.time(),
    }
    if compressed["failed"]:
        out["compressed_failures"] = compressed["failed"]
    out.update(stage_claims(session))
    return out


def measure_latency(session: Session, example: torch.Tensor) -> tuple[dict[str, Any], dict[str, str]]:
    """({"eager": figure, "<runtime>": figure or None}, {"<runtime>": why it is None}): the model timed in eager and,
    when the run's runtime is another, exported to it, verified against eager and timed the same way (on the CPU
    like eager; a GPU runtime on CUDA)."""
    cpu_model, cpu_example = cpu_copy(session.model, session.device), example.cpu()
    latency: dict[str, Any] = {"eager": latency_stats(cpu_model, cpu_example)}
    if session.runtime == runtimes.DEFAULT:
        return latency, {}
    session.check_cancel()
    latency[session.runtime], why = runtimes.measure_on(session.runtime, cpu_model, cpu_example)
    return latency, ({session.runtime: why} if why else {})


STAGE_CLAIMS = ("agreement", "agreement_layers", "float_layers", "latency_ratio")


def stage_claims(session: Session) -> dict[str, Any]:
    """What the stage just run measured of its own result against its input (`session.note(agreement=...,
    latency_ratio=...)`): it goes into the snapshot's row."""
    out: dict[str, Any] = {}
    for entry in session.history:
        if entry.get("stage") == session.stage_index:
            out.update({k: entry[k] for k in STAGE_CLAIMS if k in entry})
    return out
