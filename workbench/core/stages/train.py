"""`train`: (re)train or fine-tune the current model; pruned weights stay at zero."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..params import param
from ..training import OPTIMIZERS, SCHEDULES, fit
from . import StageKind, register

if TYPE_CHECKING:
    from ..events import Event
    from ..session import Session

DESCRIPTION = "Train the current model on the data's training split. Pruned weights stay zero."


@dataclass
class Params:
    epochs: int = param(3, "Passes over the training data.", min=0, max=1000)
    optimizer: str = param("adam", "Optimiser.", choices=OPTIMIZERS)
    lr: float = param(1e-3, "Learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    weight_decay: float = param(0.0, "L2 weight decay.", min=0.0, max=1.0, step=1e-5)
    batch_size: int = param(64, "Samples per step.", min=1, max=4096)
    schedule: str = param("constant", "Learning-rate schedule.", choices=SCHEDULES)


def run(session: Session, p: Params) -> Iterator[Event]:
    yield from fit(session, p.epochs, p.lr, p.optimizer, p.schedule, p.weight_decay, p.batch_size)


STAGE = register(StageKind(kind="train", title="Train / fine-tune", description=DESCRIPTION, params=Params, run=run))
