"""One entry point for every restructuring method (the `restructure` stage and the benchmarks use it)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from torch import nn

from . import depthwise, fold_bn, lowrank

ELIGIBLE = {"lowrank": lowrank.eligible, "depthwise": depthwise.eligible}


def eligible_layers(model: nn.Module, method: str) -> list[str]:
    """Names of the layers `method` can change (fold_bn: none, it works on pairs)."""
    test = ELIGIBLE.get(method)
    return [n for n, m in model.named_modules() if n and test is not None and test(m)]


def restructure(model: nn.Module, method: str, layers: list[str], rank: int | float = 0.25,
                energy: float | None = None, skip_growing: bool = True,
                between: Callable[[], None] = lambda: None) -> tuple[dict[str, Any], dict[str, str]]:
    """Change `model` in place; returns (replayable transform, {layer: what was done}).

    lowrank skips a layer the factorisation would not shrink when `skip_growing`; `between` runs before
    each layer (a cancellation check).
    """
    if method == "fold_bn":
        pairs = fold_bn.find_pairs(model)
        fold_bn.fold(model, pairs)
        return {"op": fold_bn.OP, "pairs": [list(x) for x in pairs]}, {c: f"folded {b}" for c, b in pairs}
    changed: dict[str, str] = {}
    transform: dict[str, Any] = {"op": method, "layers": {} if method == "lowrank" else []}
    for name in layers:               # `eligible_layers` for `method` (the stage checks them)
        between()
        if method == "lowrank":
            layer = cast(lowrank.Factorable, model.get_submodule(name))
            r = lowrank.rank_for(layer, rank, energy)
            if skip_growing and lowrank.params_after(layer, r) >= sum(t.numel() for t in layer.parameters()):
                continue
            new, error = lowrank.factorise(layer, r)
            transform["layers"][name] = r
            changed[name] = f"rank {r} of {lowrank.full_rank(layer)}, error {error:.3f}"
        else:
            conv = cast(nn.Conv2d, model.get_submodule(name))
            new, error = depthwise.separate(conv)
            transform["layers"].append(name)
            changed[name] = f"cost x{depthwise.cost_ratio(conv):.3f}, error {error:.3f}"
        model.set_submodule(name, new)
    return transform, changed
