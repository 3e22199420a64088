"""Is an int8 conversion right? Top-1 agreement with the float model on val inputs, and the layers to blame.

`agreement`: the fraction of val samples whose top-1 class is the same from the int8 model and from the
float model it was made from (the stage input), in [0, 1].

`layer_errors`: the cheapest per-layer check that works: one pass of the same val batches through both
models with forward hooks on every weight layer present under the same name in both, giving each layer's
relative output error ||int8 - float|| / ||float||. Errors accumulate down the network, so a layer is
blamed for what it adds: its error minus the largest error of the layers that ran before it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _float(t: Any) -> torch.Tensor | None:
    if not isinstance(t, torch.Tensor):
        return None
    return (t.dequantize() if t.is_quantized else t).detach().float()


def agreement(float_model: nn.Module, int8_model: nn.Module, batches: Batches, limit: int = 8) -> float:
    """Top-1 agreement of the two models on up to `limit` batches, in [0, 1] (1.0 with no batches)."""
    same = total = 0
    float_model.eval()
    int8_model.eval()
    with torch.inference_mode():
        for i, (x, _) in enumerate(batches):
            if i >= limit:
                break
            x = x.cpu()
            a, b = float_model(x).argmax(1), int8_model(x).argmax(1)
            same += int((a == b).sum())
            total += int(a.numel())
    return same / total if total else 1.0


def _hooks(model: nn.Module, names: set[str], into: dict[str, list[torch.Tensor]]) -> list[Any]:
    handles = []
    for name, module in model.named_modules():
        if name in names:
            def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
                t = _float(out)
                if t is not None:
                    into.setdefault(name, []).append(t)
            handles.append(module.register_forward_hook(hook))
    return handles


def layer_errors(float_model: nn.Module, int8_model: nn.Module, batches: Batches, limit: int = 4) -> dict[str, float]:
    """Relative output error of each weight layer (by name, in execution order) between the two models."""
    float_names = {n for n, m in float_model.named_modules() if isinstance(m, WEIGHT_TYPES)}
    names = float_names & {n for n, _ in int8_model.named_modules()}
    fused = {n: "relu" in type(m).__name__.lower() for n, m in int8_model.named_modules() if n in names}
    outs_f: dict[str, list[torch.Tensor]] = {}
    outs_q: dict[str, list[torch.Tensor]] = {}
    handles = _hooks(float_model, names, outs_f) + _hooks(int8_model, names, outs_q)
    try:
        with torch.inference_mode():
            for i, (x, _) in enumerate(batches):
                if i >= limit:
                    break
                float_model(x.cpu())
                int8_model(x.cpu())
    finally:
        for h in handles:
            h.remove()
    errors: dict[str, float] = {}
    for name in outs_f:                             # dicts keep insertion order: the order the layers ran
        if name not in outs_q or len(outs_f[name]) != len(outs_q[name]):
            continue
        ref = torch.cat([t.flatten() for t in outs_f[name]])
        if fused.get(name):                         # conv/linear + relu fused into one int8 module
            ref = ref.relu()
        got = torch.cat([t.flatten() for t in outs_q[name]])
        if got.shape != ref.shape:
            continue
        errors[name] = float((got - ref).norm() / ref.norm().clamp_min(1e-12))
    return errors


def blame(errors: dict[str, float], most: int = 3) -> list[tuple[str, float]]:
    """The layers that add the most error (their error minus the worst before them), largest first."""
    added, worst = [], 0.0
    for name, err in errors.items():
        added.append((name, err - worst))
        worst = max(worst, err)
    ranked = sorted(added, key=lambda kv: kv[1], reverse=True)
    return [kv for kv in ranked if kv[1] > 0][:most] or ranked[:1]
