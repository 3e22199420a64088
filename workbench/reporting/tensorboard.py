"""`workbench run --tensorboard DIR`: a listener on the run's events that writes TensorBoard event files.

- every `Metric` as a scalar (tag = the metric's name, e.g. `finetune/loss`) on one continuous x axis across stages:
  a stage's points start where the previous stage's ended, as in the report's curves. TensorBoard steps are whole
  numbers and metric steps are fractional epochs, so the step written is x * STEP_SCALE (1000: "25k" = x 25);
- per snapshot: its per-layer sparsities as a histogram (`sparsity/layers`, step = snapshot index), its main numbers
  as scalars under `snapshot/`, and the snapshot table so far as Markdown text (`snapshots`).

Needs the optional `tensorboard` package (`pip install 'workbench[tensorboard]'`); without it `open_writer` raises
`BadInput`, before the run starts.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.errors import BadInput
from ..core.events import Metric, RunFinished, SnapshotSaved, StageStarted
from .tables import SNAPSHOT_COLUMNS, fmt, is_number

STEP_SCALE = 1000
INSTALL_HINT = "--tensorboard needs TensorBoard, which is not installed: pip install 'workbench[tensorboard]'"
SNAPSHOT_SCALARS = ("accuracy", "val_accuracy", "sparsity", "compression_ratio", "compressed_bytes", "nonzero_params",
                    "flops", "latency_ms")


def open_writer(log_dir: str | Path):
    """A `SummaryWriter` on `log_dir`; BadInput when TensorBoard is missing or the folder cannot be written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise BadInput(INSTALL_HINT) from None
    log_dir = Path(log_dir)
    if log_dir.exists() and not log_dir.is_dir():
        raise BadInput(f"--tensorboard {log_dir}: exists and is not a folder")
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        return SummaryWriter(log_dir=str(log_dir))
    except OSError as exc:
        raise BadInput(f"--tensorboard {log_dir}: cannot write there ({exc.strerror or type(exc).__name__})") from None


def markdown_table(rows: list[dict]) -> str:
    head = "| " + " | ".join(t for _, t, _ in SNAPSHOT_COLUMNS) + " |"
    rule = "|" + "|".join(" --- |" for _ in SNAPSHOT_COLUMNS)
    body = ["| " + " | ".join(fmt(r.get(k), kind).replace("|", "\\|") for k, _, kind in SNAPSHOT_COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


class TensorBoardLogger:
    """Call `handle(event)` for every event of a run, then `close()`. Only rank 0 writes under torchrun."""

    def __init__(self, log_dir: str | Path, writer: Any = None) -> None:
        self.enabled = int(os.environ.get("RANK", "0") or 0) == 0
        self.writer = writer if writer is not None else (open_writer(log_dir) if self.enabled else None)
        self.offset = 0.0              # where the current stage starts on the continuous axis
        self.stage_end: float | None = None   # the current stage's largest step (None: no point yet)
        self.snapshots: list[dict] = []

    def handle(self, event: Any) -> None:
        writer = self.writer
        if writer is None:
            return
        if isinstance(event, StageStarted):
            if self.stage_end is not None:         # as the report's curves: a stage with points takes at least 1
                self.offset += max(1.0, self.stage_end)
            self.stage_end = None
        elif isinstance(event, Metric) and is_number(event.value) and is_number(event.step):
            step = max(0.0, float(event.step))
            self.stage_end = max(self.stage_end or 0.0, step)
            writer.add_scalar(event.name, float(event.value), global_step=round((self.offset + step) * STEP_SCALE))
        elif isinstance(event, SnapshotSaved):
            self._snapshot(writer, event)
        elif isinstance(event, RunFinished):
            writer.add_text("run", f"{'finished' if event.ok else 'ended'}: {event.message or ''} ({event.report_path})")
            writer.flush()

    def _snapshot(self, writer: Any, event: SnapshotSaved) -> None:
        row = {k: v for k, v in event.metrics.items() if k != "layers"}
        self.snapshots.append(row)
        index = int(event.index)
        for key in SNAPSHOT_SCALARS:
            if is_number(row.get(key)):
                writer.add_scalar(f"snapshot/{key}", float(row[key]), global_step=index)
        layers = event.metrics.get("layers") or {}
        values = [float(m["sparsity"]) for m in layers.values() if isinstance(m, dict) and is_number(m.get("sparsity"))]
        if values:
            import numpy as np
            writer.add_histogram("sparsity/layers", np.asarray(values), global_step=index, bins="auto")
        writer.add_text("snapshots", markdown_table(self.snapshots), global_step=index)
        writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
