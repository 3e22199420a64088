"""`openvino` (the `workbench[openvino]` extra): the model's ONNX file read by OpenVINO, compiled for its CPU
device in float32 with LATENCY_THREADS inference threads."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..latency import LATENCY_THREADS
from .base import Runtime, RuntimeFn, onnx_file


def config() -> dict[str, object]:
    return {"INFERENCE_NUM_THREADS": LATENCY_THREADS, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def prepare(model: nn.Module, example: torch.Tensor) -> RuntimeFn:
    import openvino as ov
    core = ov.Core()
    with onnx_file(model, example) as path:
        graph = core.read_model(str(path))
        graph.reshape(list(example.shape))                # static shapes: what is timed is this batch
        compiled = core.compile_model(graph, "CPU", config())
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        result = request.infer([array])
        return torch.from_numpy(np.array(result[compiled.output(0)]))
    return run


RUNTIME = Runtime("openvino", "OpenVINO (CPU device)", prepare, extra="openvino", requires=("openvino",),
                  tolerance=1e-3)
