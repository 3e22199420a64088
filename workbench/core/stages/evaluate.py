"""`evaluate`: measure accuracy (and loss) of the current model on a split; changes nothing."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..events import Event, Log, Metric, Progress
from ..params import param
from . import StageKind, any_state, register

if TYPE_CHECKING:
    from ..session import Session

DESCRIPTION = "Top-1 accuracy and loss on a split (test by default; val is where decisions are taken)."


@dataclass
class Params:
    split: str = param("test", "Which split to evaluate.", choices=["test", "val", "train", "calib"])


def run(session: Session, p: Params) -> Iterator[Event]:
    model, device = session.model.eval(), session.device
    batches = getattr(session.data, p.split)
    total = len(batches) if hasattr(batches, "__len__") else 0
    correct = seen = 0
    loss_sum = 0.0
    with torch.inference_mode():
        for i, (x, y) in enumerate(batches):
            out = model(x.to(device))
            y = y.to(device)
            loss_sum += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            seen += len(y)
            yield Progress(i + 1, total or i + 1, f"evaluating on {p.split}")
    acc = correct / max(1, seen)
    yield Metric(f"eval/{p.split}_accuracy", acc, session.stage_index)
    yield Metric(f"eval/{p.split}_loss", loss_sum / max(1, seen), session.stage_index)
    yield Log("info", f"{p.split} accuracy {acc:.4f} on {seen} samples")


STAGE = register(StageKind(kind="evaluate", title="Evaluate",
                           description=DESCRIPTION, params=Params, run=run, changes_model=False,
                           takes=any_state))
