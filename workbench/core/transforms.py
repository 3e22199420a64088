"""Replayable model transformations.

A model's *record* says how to rebuild its architecture without pickles: a base spec (`arch:...`,
`torchvision:...`) plus the list of structural transformations applied since (structured pruning,
low-rank factorisation, int8 conversion, ...). Each transformation kind registers a `replay`
function that redoes the structural change on a freshly built model (weights are loaded afterwards
from the snapshot's tensors), so a snapshot folder or a workbench safetensors file always reloads.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from torch import nn

from .errors import CheckpointError

Replay = Callable[[nn.Module, dict[str, Any]], nn.Module]
_REPLAYS: dict[str, Replay] = {}


def register(op: str) -> Callable[[Replay], Replay]:
    """`register(NAME)(replay_fn)`, once per name: a second replay under a name already taken is an error when its
    module is imported (it would silently change how every record naming the transform reloads)."""
    def deco(fn: Replay) -> Replay:
        if op in _REPLAYS:
            raise ValueError(f"transform {op!r} is registered twice ({_where(_REPLAYS[op])} and {_where(fn)})")
        _REPLAYS[op] = fn
        return fn
    return deco


def _where(fn: Replay) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


# Replays that trace (int8, fold_bn) run in any thread: the GUI rebuilds snapshots while it measures a model.
TRACE_LOCK = threading.RLock()   # torch.fx tracing patches nn.Module for the whole process: one trace at a time


class OwnThreadTracer:
    """A mixin for torch.fx tracers (before the Tracer class in the bases). While it traces, torch.fx sends every
    thread's nn.Module calls and attribute reads through it; another thread's (the model panel measuring, a data
    loader's torchvision transforms) then failed 'module is not installed as a submodule'. Here they run as usual:
    only the tracing thread (torch.fx's tracing flag is per thread) is traced."""

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from torch.fx._symbolic_trace import is_fx_symbolic_tracing
        if not is_fx_symbolic_tracing():
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)  # type: ignore[misc]  # the Tracer after this mixin

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        from torch.fx._symbolic_trace import is_fx_symbolic_tracing
        if not is_fx_symbolic_tracing():
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)  # type: ignore[misc]


# The modules that register a replay when imported (one per kind of structural change). A new kind of
# transform adds its module here; nothing else needs to import it before a record can be replayed.
REPLAY_MODULES = (
    "workbench.core.pruning.structured",        # structured_prune
    "workbench.core.quantization.int8",         # int8_dynamic, int8_static, qat
    "workbench.core.quantization.floats",       # cast
    "workbench.core.restructure.lowrank",       # lowrank
    "workbench.core.restructure.depthwise",     # depthwise
    "workbench.core.restructure.fold_bn",       # fold_bn
    "workbench.core.dynamic.early_exit",        # early_exit
)


def _load_replay_modules() -> None:
    for name in REPLAY_MODULES:
        importlib.import_module(name)


def replay(model: nn.Module, transforms: list[dict[str, Any]]) -> nn.Module:
    if transforms:
        _load_replay_modules()
    for t in transforms:
        op = t.get("op")
        if op not in _REPLAYS:
            raise CheckpointError(f"model record names an unknown transformation {op!r}")
        model = _REPLAYS[op](model, t)
    return model
