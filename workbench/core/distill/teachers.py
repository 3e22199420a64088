"""Teachers for distillation: the run's input, one of its snapshots, a model spec, or an ensemble."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeGuard

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..errors import BadInput
from ..metrics import is_quantized
from .losses import soft_targets

TeacherRef = str | int     # one teacher: a model spec ("input", a file, a snapshot folder) or a snapshot index


class FeatureTap:
    """Forward hooks that keep the latest output of the named modules (removed by `close`)."""

    def __init__(self, model: nn.Module, names: list[str], who: str) -> None:
        modules = dict(model.named_modules())
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[RemovableHandle] = []
        for name in names:
            if name not in modules:
                raise BadInput(f"{who} has no layer {name!r}")
            self._handles.append(modules[name].register_forward_hook(self._keeper(name)))

    def _keeper(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            self.outputs[name] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def is_snapshot_index(teacher: object) -> TypeGuard[int]:
    return isinstance(teacher, int) and not isinstance(teacher, bool)


def teacher_specs(teacher: TeacherRef | list[str]) -> list[TeacherRef]:
    """The list of teacher references in a `teacher` setting (one unless an ensemble)."""
    return list(teacher) if isinstance(teacher, list) else [teacher]


class Teacher:
    """Soft targets (and, for a single teacher, features) for a batch; an ensemble averages the softened outputs."""

    def __init__(self, modules: list[nn.Module], feature_layers: list[str], device: torch.device) -> None:
        self.modules = modules
        self.on_cpu = [is_quantized(m) for m in modules]   # int8 teachers run on the CPU only
        self.device = device
        self.tap = FeatureTap(modules[0], feature_layers, "the teacher") if feature_layers else None

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(averaged soft targets at `temperature`, averaged logits, the first teacher's tapped features)."""
        logits = [m(x.cpu() if cpu else x).float().to(self.device) for m, cpu in zip(self.modules, self.on_cpu)]
        probs = torch.stack([soft_targets(z, temperature) for z in logits]).mean(0)
        features = dict(self.tap.outputs) if self.tap else {}
        return probs, torch.stack(logits).mean(0), features

    def accuracy(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        correct = seen = 0
        for x, y in batches:
            p, _, _ = self(x.to(self.device), 1.0)
            correct += int((p.argmax(1).cpu() == y).sum())
            seen += len(y)
        return correct / max(1, seen)

    def close(self) -> None:
        if self.tap:
            self.tap.close()


def describe(ref: TeacherRef) -> str:
    if ref == "input":
        return "the run's input model (snapshot 0)"
    if is_snapshot_index(ref):
        return f"snapshot {ref}"
    return Path(str(ref)).name if Path(str(ref)).exists() else str(ref)
