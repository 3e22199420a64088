"""Deploy runtimes: where a model will run, so that its latency is measured there (the recipe's `runtime:`).

One module per runtime, each defining `RUNTIME = Runtime(...)` (`base.py`): `eager` (the default), `compile`
(torch.compile, inductor), `onnxruntime`, `openvino` (an optional extra) and `tensorrt` (an optional extra, CUDA
GPUs only). A snapshot is measured in eager and on the run's runtime: exported to it (`prepare`), its outputs
verified against the snapshot's eager outputs on the example (`verify`), then timed under the tool's one timing
policy (`core/latency.py`: LATENCY_THREADS threads, median of repeats with p10 and p90).

    rt = runtimes.get("onnxruntime")              # BadInput for an unknown name, listing the names
    why = rt.missing()                            # None, or why not here ("... pip install 'workbench[openvino]'")
    stats, why = runtimes.measure_on("onnxruntime", model, example)    # (latency figure | None, why | None)
"""
from __future__ import annotations

import copy
import importlib
from typing import Any

import torch
from torch import nn

from ..errors import BadInput, clip
from ..latency import REPEATS, latency_stats
from .base import Runtime, RuntimeFn, Unsupported, verify

__all__ = ["DEFAULT", "Runtime", "RuntimeFn", "Unsupported", "get", "measure_on", "names", "usable", "verify"]

DEFAULT = "eager"
_MODULES = {"eager": "eager", "compile": "compile", "onnxruntime": "onnxruntime", "openvino": "openvino",
            "tensorrt": "tensorrt"}      # name -> module, in the order they are offered


def names() -> list[str]:
    """Every runtime's name, the default first (installed here or not)."""
    return list(_MODULES)


def get(name: object, field: str = "runtime", error: type[BadInput] = BadInput) -> Runtime:
    """The runtime called `name`; BadInput (or `error`) naming `field` and listing the names otherwise."""
    if not isinstance(name, str) or name not in _MODULES:
        raise error(f"{field}: unknown runtime {clip(repr(name), 60)} (known: {', '.join(names())})")
    runtime: Runtime = importlib.import_module(f"{__name__}.{_MODULES[name]}").RUNTIME
    return runtime


def usable(name: object, field: str = "runtime") -> Runtime:
    """The runtime called `name` if it can run here; BadInput in one line naming it, why not and what to install."""
    runtime = get(name, field)
    why = runtime.missing()
    if why:
        raise BadInput(f"{field} {runtime.name}: cannot be used here: {why}")
    return runtime


def measure_on(runtime: str | Runtime, model: nn.Module, example: torch.Tensor, repeats: int = REPEATS,
               max_seconds: float = 5.0) -> tuple[dict[str, Any] | None, str | None]:
    """(latency figure, None) of `model` exported to `runtime`, verified against its eager outputs on `example` and
    timed like every latency of the tool ({"median_ms", "p10_ms", "p90_ms", "repeats", "threads", "batch"}); or
    (None, why) when the runtime is missing here, the model cannot be exported to it, or its outputs differ.
    Runs on `example`'s device (a runtime that needs a GPU: on CUDA, with copies). Never raises for a model."""
    rt = runtime if isinstance(runtime, Runtime) else get(runtime)
    why = rt.missing()
    if why:
        return None, f"{rt.name} cannot be used here: {why}"
    if rt.needs_gpu and not example.is_cuda:
        model, example = copy.deepcopy(model).cuda(), example.cuda()
    try:
        fn = rt.prepare(model.eval(), example)
    except Unsupported as exc:
        return None, f"cannot run on {rt.name}: {clip(exc, 300)}"
    except Exception as exc:  # noqa: BLE001 - any failure to export is reported with the runtime's name
        return None, f"exporting to {rt.name} failed: {type(exc).__name__}: {clip(exc, 300)}"
    why = verify(rt.name, fn, model, example, rt.tolerance)
    if why:
        return None, why
    try:
        return latency_stats(fn, example, repeats, max_seconds=max_seconds), None
    except Exception as exc:  # noqa: BLE001 - a runtime that fails while timed is reported, never raised
        return None, f"timing on {rt.name} failed: {type(exc).__name__}: {clip(exc, 300)}"
