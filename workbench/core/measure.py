"""The numbers recorded for every snapshot (the rows of report.json)."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from . import metrics
from .snapshots import smallest_file


def cpu_copy(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return model if device.type == "cpu" else copy.deepcopy(model).cpu()


def measure(session, folder: Path, baseline_dense_bytes: int | None) -> dict:
    """Accuracy, sizes, FLOPs and latency of the session's model; writes the compressed file into `folder`.

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
    acc = metrics.accuracy(model, session.data.test, session.device)
    val = metrics.accuracy(model, session.data.val, session.device) if session.data.splits["val"] else None
    session.check_cancel()
    lat = metrics.latency_ms(cpu_copy(model, session.device), example.cpu())
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
        "latency_ms": lat,
        "layers": {r.name: {"params": r.params, "nonzero_params": r.nonzero_params, "sparsity": r.sparsity,
                            "flops": r.flops, "shape": r.shape} for r in rows},
        "measured_at": time.time(),
    }
    if compressed["failed"]:
        out["compressed_failures"] = compressed["failed"]
    return out
