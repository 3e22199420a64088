"""Lottery-ticket rewinding (Frankle & Carbin 2019): surviving weights go back to earlier values.

The prune stage resolves the source (the model's weights at initialisation, or those of an earlier
snapshot) and hands it over as a state dict. Parameters are rewound (weights and biases, batch-norm scales and shifts); buffers such
as batch-norm running statistics are kept and re-estimated by the retraining that follows.
After structured pruning, the same channels are removed from the source first (the pruning
history is replayed on it), so every surviving channel gets its own earlier values.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import BadInput
from .structured import History, replay_history


def shape_problem(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """Why `state` cannot be rewound into `model` (None when its parameters fit)."""
    for name, p in model.named_parameters():
        if name not in state:
            return f"the rewind source has no tensor {name}"
        if tuple(state[name].shape) != tuple(p.shape):
            return (f"{name} has shape {list(state[name].shape)} there but {list(p.shape)} here "
                    f"(the architecture changed since; rewind to a later snapshot)")
    return None


class Rewinder:
    """Holds the rewind source as a model of the shapes the stage started from."""

    def __init__(self, start_model: nn.Module, state: dict[str, torch.Tensor], path: str = "rewind") -> None:
        problem = shape_problem(start_model, state)
        if problem:
            raise BadInput(f"{path}: {problem}")
        self.source = copy.deepcopy(start_model)
        with torch.no_grad():
            for name, p in self.source.named_parameters():
                p.copy_(state[name].to(p.device, p.dtype))

    def rewind(self, model: nn.Module, pruning_history: History | None = None,
               example: torch.Tensor | None = None) -> None:
        """Copy the source's parameters into `model` (after replaying structured pruning on a copy)."""
        source = self.source
        if pruning_history:
            if example is None:
                raise ValueError("replaying a pruning history needs an example input")
            source = replay_history(copy.deepcopy(self.source), pruning_history, example)
        values = dict(source.named_parameters())
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(values[name])
