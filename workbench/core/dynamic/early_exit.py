"""Early exits: classifier heads after intermediate layers; a sample leaves at the first confident one.

The heads live in the model as `exit_heads` (an `nn.ModuleDict`), so they are saved, counted and
exported like any other weights, and the model's ordinary forward (the final classifier) is unchanged.
Exiting uses forward hooks installed only while needed (`Exits`): in `collect` mode every head's logits
are gathered in one pass; with a `threshold`, the hook raises `ExitTaken` as soon as a head's top softmax
probability reaches it for every sample of the batch, so the rest of the network really is skipped.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from .. import transforms
from ..errors import BadInput

OP = "early_exit"
HEADS = "exit_heads"


class ExitTaken(Exception):
    def __init__(self, index: int, logits: torch.Tensor) -> None:
        super().__init__(index)
        self.index, self.logits = index, logits


def key(name: str) -> str:
    return name.replace(".", "__")


def make_head(features: int, spatial: bool, classes: int) -> nn.Module:
    """Spatial features are pooled to 2x2, not 1x1: where a stroke is matters early in a network."""
    if spatial:
        return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * features, classes))
    return nn.Sequential(nn.ReLU(), nn.Linear(features, classes))


def probe(model: nn.Module, example: torch.Tensor, names: list[str]) -> dict[str, tuple[int, torch.Size | None]]:
    """(calls, output shape: None when it gives no tensor) of each named module on one forward pass."""
    modules = dict(model.named_modules())
    seen: dict[str, list[torch.Size | None]] = {n: [] for n in names}
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen[n].append(getattr(o, "shape", None)))
               for n in names]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return {n: (len(v), v[0] if v else None) for n, v in seen.items()}


def check_exit(name: str, calls: int, shape: torch.Size | None) -> str | None:
    if calls != 1:
        return f"{name!r} runs {calls} times per forward pass; an exit needs a layer that runs once"
    if shape is None or len(shape) not in (2, 4):
        return f"{name!r} gives {list(shape) if shape is not None else 'no tensor'}; an exit needs [B, C, H, W] or [B, D]"
    return None


def default_exits(model: nn.Module, example: torch.Tensor, count: int) -> list[str]:
    """`count` exits spread over the model's top-level blocks (children with children), the last block excluded;
    for models without blocks (MLPs), over the hidden Linear layers."""
    children = [(n, m) for n, m in model.named_children() if n != HEADS]
    blocks = [n for n, m in children if any(True for _ in m.children())]
    if len(blocks) < 2:
        blocks = [n for n, m in children if isinstance(m, nn.Linear)]
    info = probe(model, example, blocks)
    usable = [n for n in blocks[:-1] if check_exit(n, *info[n]) is None]
    if count > len(usable):
        raise BadInput(f"the model has {len(usable)} place(s) for an automatic exit ({', '.join(usable) or 'none'}); "
                       f"ask for fewer or name the layers")
    step = len(usable) / count
    return [usable[min(len(usable) - 1, int(round((i + 1) * step)) - 1)] for i in range(count)]


def attach(model: nn.Module, example: torch.Tensor, names: list[str], classes: int) -> dict[str, Any]:
    """Add a head after each named layer (layers `check_exit` accepts); returns the replayable transform."""
    info = probe(model, example, names)
    spec: list[dict[str, Any]] = []
    for n in names:
        shape = info[n][1]
        if shape is None:
            raise BadInput(f"{n!r} gives no tensor; an exit needs [B, C, H, W] or [B, D]")
        spec.append({"layer": n, "features": int(shape[1]), "spatial": len(shape) == 4})
    _add_heads(model, spec, classes)
    return {"op": OP, "exits": spec, "classes": classes}


def _add_heads(model: nn.Module, spec: list[dict[str, Any]], classes: int) -> None:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.add_module(HEADS, nn.ModuleDict({key(e["layer"]): make_head(e["features"], e["spatial"], classes)
                                           for e in spec}).to(device))


def exit_layers(record: dict[str, Any]) -> list[str]:
    for t in reversed(record.get("transforms", [])):
        if t.get("op") == OP:
            return [e["layer"] for e in t["exits"]]
    return []


class Exits:
    """While active (a `with` block): heads run after their layers. `outputs` holds their logits in order;
    with `threshold`, a confident head ends the forward pass by raising ExitTaken."""

    def __init__(self, model: nn.Module, layers: list[str], threshold: float | None = None,
                 stop_at: int | None = None) -> None:
        self.model, self.layers, self.threshold, self.stop_at = model, layers, threshold, stop_at
        self.outputs: list[torch.Tensor] = []
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> Exits:
        modules, heads = dict(self.model.named_modules()), getattr(self.model, HEADS)
        for i, name in enumerate(self.layers):
            head = heads[key(name)]

            def hook(_m: nn.Module, _inp: Any, out: Any, i: int = i, head: nn.Module = head) -> None:
                logits = head(out)
                self.outputs.append(logits)
                if i == self.stop_at or (self.threshold is not None
                                         and F.softmax(logits, 1).max(1).values.min() >= self.threshold):
                    raise ExitTaken(i, logits)
            self._handles.append(modules[name].register_forward_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def run(self, x: torch.Tensor) -> tuple[int, torch.Tensor]:
        """(exit index, logits); the final classifier is index len(layers)."""
        self.outputs.clear()
        try:
            return len(self.layers), self.model(x)
        except ExitTaken as taken:
            return taken.index, taken.logits


def exit_flops(model: nn.Module, layers: list[str], example: torch.Tensor) -> list[int]:
    """Measured FLOPs of one sample leaving at each exit (the layers up to it and every head on the way),
    and, last, of one that runs to the final classifier with every head computed."""
    from torch.utils.flop_counter import FlopCounterMode
    costs = []
    for stop in [*range(len(layers)), None]:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter, Exits(model, layers, stop_at=stop) as exits:
            exits.run(example[:1])
        costs.append(int(counter.get_total_flops()))
    return costs


def _replay(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    _add_heads(model, t["exits"], t["classes"])
    return model


transforms.register(OP)(_replay)
