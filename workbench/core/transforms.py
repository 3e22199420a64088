"""Replayable model transformations.

A model's *record* says how to rebuild its architecture without pickles: a base spec (`arch:...`,
`torchvision:...`) plus the list of structural transformations applied since (structured pruning,
low-rank factorisation, int8 conversion, ...). Each transformation kind registers a `replay`
function that redoes the structural change on a freshly built model (weights are loaded afterwards
from the snapshot's tensors), so a snapshot folder or a workbench safetensors file always reloads.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from .errors import CheckpointError

Replay = Callable[[nn.Module, dict], nn.Module]
_REPLAYS: dict[str, Replay] = {}


def register(op: str) -> Callable[[Replay], Replay]:
    def deco(fn: Replay) -> Replay:
        _REPLAYS[op] = fn
        return fn
    return deco


def _load_replay_modules() -> None:
    # Stage modules register their replays on import.
    from . import stages  # noqa: F401
    stages.import_all()


def replay(model: nn.Module, transforms: list[dict]) -> nn.Module:
    if transforms:
        _load_replay_modules()
    for t in transforms:
        op = t.get("op")
        if op not in _REPLAYS:
            raise CheckpointError(f"model record names an unknown transformation {op!r}")
        model = _REPLAYS[op](model, t)
    return model
