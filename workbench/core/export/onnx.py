"""`onnx`: an ONNX graph (opset 17, dynamic batch), verified by running it in onnxruntime."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import ExportSource, Format, ModelFn

OPSET = 17


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """torch.onnx's TorchScript-based exporter (the dynamo one needs onnxscript, which this project does not ship)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def session(path: Path) -> Any:   # an onnxruntime.InferenceSession (onnxruntime has no type hints)
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runner(path: Path) -> ModelFn:
    """A callable tensor -> tensor backed by an onnxruntime session."""
    sess = session(path)
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(sess.run(None, {name: x.detach().cpu().numpy().astype(np.float32)})[0]))
    return run


def quantized_reason(source: ExportSource) -> str | None:
    for k, v in source.model.state_dict().items():
        if getattr(v, "is_quantized", False) or not isinstance(v, torch.Tensor):
            return (f"{k} is a torch.ao int8 tensor, which ONNX export does not take; export the float snapshot "
                    f"as onnx_int8 instead")
    return None


def write(source: ExportSource, path: Path) -> dict[str, Any]:
    export_onnx(source.model, source.example, path)
    import onnx
    onnx.checker.check_model(str(path))
    return {"opset": OPSET}


def read(path: Path, record: dict[str, Any]) -> ModelFn:
    return runner(path)


FORMAT = Format("onnx", ".onnx", "ONNX (opset 17), checked and run in onnxruntime", write, read, tolerance=1e-4,
                applies=quantized_reason,
                after_int8="torch.ao int8 models do not export to ONNX; put the ONNX int8 export before Quantize, or "
                "choose onnx_int8 on the float snapshot")
