"""What every deploy runtime is (`Runtime`), and what they share: importability, the ONNX file, verification."""
from __future__ import annotations

import contextlib
import importlib.util
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import clip

RuntimeFn = Callable[[torch.Tensor], torch.Tensor]     # a model exported to a runtime: inputs -> outputs


class Unsupported(Exception):
    """This model cannot be exported to this runtime (a torch.ao int8 model to ONNX, ...): the message says why."""


@dataclass(frozen=True)
class Runtime:
    """A place a model is deployed on. `prepare(model, example)` exports the model to it (on `example`'s device)
    and returns the callable that runs it; `tolerance` is the largest |output diff| against eager accepted, relative
    to max(1, max |eager output|), as the export formats'."""

    name: str
    description: str
    prepare: Callable[[nn.Module, torch.Tensor], RuntimeFn]
    extra: str | None = None                      # the pip extra that installs it (`workbench[openvino]`)
    requires: tuple[str, ...] = ()                # modules it imports
    check: Callable[[], str | None] | None = None  # why it cannot run here apart from the modules (no GPU, no compiler)
    tolerance: float = 1e-4
    needs_gpu: bool = False                       # measured on a CUDA device (the others on the CPU, like eager)

    def install_hint(self) -> str:
        return f"pip install 'workbench[{self.extra}]'" if self.extra else ""

    def missing(self) -> str | None:
        """Why this runtime cannot be used here, in words (with what to install), or None when it can."""
        reasons = [r for r in ([self.check()] if self.check else []) if r]
        absent = [m for m in self.requires if not importable(m)]
        if absent:
            hint = f" ({self.install_hint()})" if self.extra else ""
            reasons.append(f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed here{hint}")
        return "; ".join(reasons) or None


def importable(module: str) -> bool:
    """True when `module` can be imported here (looked up, not imported: nothing of it runs)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def no_gpu() -> str | None:
    return None if torch.cuda.is_available() else "it runs on a CUDA GPU and none is available here"


def int8_reason(model: nn.Module) -> str | None:
    """Why `model` cannot go through ONNX: a torch.ao int8 model (the export format's own words)."""
    from ..export import ExportSource
    from ..export.onnx import quantized_reason
    return quantized_reason(ExportSource(model, {}, {}, torch.zeros(0)))


@contextlib.contextmanager
def onnx_file(model: nn.Module, example: torch.Tensor) -> Iterator[Path]:
    """The model as an ONNX file (the `onnx` export's own exporter: opset 17, dynamic batch) in a temporary folder,
    removed afterwards; Unsupported for a model ONNX cannot take."""
    reason = int8_reason(model)
    if reason:
        raise Unsupported(reason)
    from ..export.onnx import export_onnx
    with tempfile.TemporaryDirectory(prefix="workbench-runtime-") as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, example.to(model_device(model)), path)
        yield path


def model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def first_tensor(out: Any) -> torch.Tensor:
    """A model's output as one tensor (the first of a tuple or list), on the CPU, in float32."""
    while isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the output is a {type(out).__name__}, not a tensor")
    return out.detach().float().cpu()


def verify(name: str, fn: RuntimeFn, model: nn.Module, example: torch.Tensor, tolerance: float) -> str | None:
    """None when `fn` (the model on a runtime) gives the model's eager outputs on `example` within `tolerance`
    (relative to max(1, max |eager output|)); otherwise why not, in words."""
    try:
        with torch.inference_mode():
            expected = first_tensor(model.eval()(example))
            got = first_tensor(fn(example))
    except Exception as exc:  # noqa: BLE001 - any failure is the runtime's, reported with its name
        return f"running the model on {name} failed: {type(exc).__name__}: {clip(exc, 200)}"
    if got.shape != expected.shape:
        return f"{name} gives outputs of shape {list(got.shape)}, the model {list(expected.shape)}"
    diff = float((got - expected).abs().max()) if got.numel() else 0.0
    bound = tolerance * max(1.0, float(expected.abs().max()) if expected.numel() else 0.0)
    if not (math.isfinite(diff) and diff <= bound):
        return f"{name}'s outputs differ from eager by {diff:.3g} (tolerance {tolerance:g} x max(1, max |output|))"
    return None
