"""The `auto` stage's latency on the run's deploy runtime (`session.runtime`, `core/runtimes`).

A latency target is met where the model will run: every candidate is prepared on the runtime once (exported
to it and, for a float model, verified against its eager outputs) and timed alternately against the stage input,
prepared on the same runtime once for the whole stage (`core.auto.timing.latency_ratio`, `core.latency.ratio_stats`).

With int8 among the methods the int8 flavour is the one the runtime runs fastest:
- eager: torch.ao `int8_static`, applied to the model by the quantize stage (the snapshot is the int8 model);
- onnxruntime: the workbench's `onnx_int8` (the ONNX graph quantized by onnxruntime, calibrated on the calib
  split) of the float candidate. The snapshot keeps the float model (onnxruntime quantizes it at export); the
  latency and the val accuracy the stage decides on are those of the int8 file's onnxruntime session.
Other runtimes have no int8 flavour here: the stage refuses int8 on them before the run starts.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import runtimes
from ..auto.timing import latency_ratio
from ..errors import StageError, clip
from ..export import ExportSource
from ..latency import LATENCY_THREADS, Timed, ratio_stats

INT8_FLAVOURS = {"eager": "torch.ao int8_static", "onnxruntime": "onnx_int8"}   # runtime -> its fastest int8 here


def int8_refusal(runtime: str) -> str | None:
    """Why the auto stage cannot combine int8 on `runtime` (None: it can)."""
    if runtime in INT8_FLAVOURS:
        return None
    return (f"int8 has no flavour on the runtime {runtime} here (eager: torch.ao int8_static; onnxruntime: "
            f"onnx_int8); use one of those runtimes or leave int8 out")


class _Runs(nn.Module):
    """A runtime's callable as a module, so that val accuracy is scored on what the runtime runs."""

    def __init__(self, fn: Timed) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fn(x)
        return out


def onnx_int8_session(model: nn.Module, example: torch.Tensor, calib: list[torch.Tensor]) -> Timed:
    """The model quantized by the `onnx_int8` export (calibrated on `calib`), in an onnxruntime session under the
    tool's timing policy (`runtimes.onnxruntime.session`)."""
    from ..export import onnx_int8
    from ..runtimes.onnxruntime import session
    with tempfile.TemporaryDirectory(prefix="workbench-auto-int8-") as tmp:
        path = Path(tmp) / "candidate.int8.onnx"
        onnx_int8.write(ExportSource(model, {}, {}, example, calib=list(calib)), path)
        sess = session(str(path))             # the session holds the graph: the file can go
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {name: x.detach().cpu().float().numpy()})[0])
    return run


class DeployTimer:
    """Latency ratios of candidates against the stage input, both on `runtime`. `int8` asks for the runtime's int8
    flavour of a float candidate (onnxruntime); on eager the candidate is already torch.ao int8."""

    def __init__(self, runtime: str, reference: nn.Module, example: torch.Tensor, calib: list[torch.Tensor],
                 threads: int = LATENCY_THREADS) -> None:
        self.runtime = runtimes.get(runtime)
        self.name = self.runtime.name
        self.device = torch.device("cuda" if self.runtime.needs_gpu else "cpu")
        self.example = example.detach().to(self.device)
        self.calib = [c.detach().cpu() for c in calib]
        self.threads = threads
        self.int8_flavour = INT8_FLAVOURS.get(self.name)
        self.ao_int8 = self.name == "eager"      # int8 is applied to the torch model itself (the snapshot)
        self._cache: tuple[nn.Module, bool, Timed] | None = None
        self.reference = self.prepare(reference, False)     # once for the stage: exports cost seconds

    def prepare(self, model: nn.Module, int8: bool) -> Timed:
        """`model` on the runtime (a copy: the session's model is left where it is)."""
        model = copy.deepcopy(model).to(self.device).eval()
        if self.name == "eager":
            return model
        if int8 and not self.ao_int8:
            try:
                return onnx_int8_session(model, self.example.cpu(), self.calib or [self.example.cpu()])
            except Exception as exc:  # noqa: BLE001 - the quantizer's failure, named
                raise StageError(f"auto: quantizing a candidate with onnx_int8 for {self.name} failed: "
                                 f"{type(exc).__name__}: {clip(exc, 300)}") from None
        try:
            fn = self.runtime.prepare(model, self.example)
        except Exception as exc:  # noqa: BLE001 - Unsupported or an exporter's failure, with the runtime's name
            raise StageError(f"auto: the model cannot be timed on {self.name}: {clip(exc, 300)}") from None
        why = runtimes.verify(self.name, fn, model, self.example, self.runtime.tolerance)
        if why:
            raise StageError(f"auto: {why}")
        return fn

    def prepared(self, model: nn.Module, int8: bool) -> Timed:
        """`prepare`, once per model object (measure and accuracy of one candidate share one export)."""
        if self._cache is None or self._cache[0] is not model or self._cache[1] != int8:
            self._cache = (model, int8, self.prepare(model, int8))
        return self._cache[2]

    def forget(self) -> None:
        """Drop the prepared candidate (the session's model is about to change in place)."""
        self._cache = None

    def base_ms(self) -> float:
        """The stage input's latency on the runtime, ms."""
        return latency_ratio(self.reference, self.reference, self.example, 3, self.threads)[2]

    def ratio(self, model: nn.Module, int8: bool, passes: int) -> float:
        """Median latency(model on the runtime) / latency(stage input on the runtime), alternating."""
        return latency_ratio(self.prepared(model, int8), self.reference, self.example, passes, self.threads)[0]

    def stats(self, model: nn.Module, int8: bool) -> dict[str, Any]:
        """The stage's claim: {"runtime", "value", "p10", "p90", "repeats", "threads"} (+ "noisy", "int8")."""
        out = ratio_stats(self.prepared(model, int8), self.reference, self.example, runtime=self.name)
        if int8 and self.int8_flavour:
            out["int8"] = self.int8_flavour
        return out

    def scored(self, model: nn.Module, int8: bool) -> nn.Module:
        """What val accuracy is read on: the model itself, or the runtime's int8 file of it."""
        if int8 and not self.ao_int8:
            return _Runs(self.prepared(model, int8))
        return model

    def describe(self, stats: dict[str, Any], target: float) -> str:
        """The log's line on the achieved ratio: value, spread, repeats, the target met or not."""
        spread = f"p10-p90 {stats['p10']:.3f}-{stats['p90']:.3f}, {stats['repeats']} alternating pairs"
        met = "meets the target" if stats["value"] <= target else \
            "the target is within its spread" if stats["p10"] <= target else "misses the target"
        noisy = "; the spread is too wide for the figure to mean much" if stats.get("noisy") else ""
        line = f"latency on {self.name}: {stats['value']:.3f} of the stage input's ({spread}), {met} {target:.3f}{noisy}"
        if stats.get("int8") == "onnx_int8":
            line += ("; the figure is for the model quantized by onnxruntime at export (onnx_int8, calibrated on the "
                     "calib split): the snapshot keeps the float model, export it as onnx_int8 to deploy it")
        return line
