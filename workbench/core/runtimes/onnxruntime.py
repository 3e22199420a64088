"""`onnxruntime`: the model as ONNX (the `onnx` export's exporter), run by an onnxruntime session: the CPU execution
provider, or CUDA's when the example is on a GPU and onnxruntime has it; LATENCY_THREADS intra-op threads."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..latency import LATENCY_THREADS
from .base import Runtime, RuntimeFn, onnx_file


def providers(cuda: bool) -> list[str]:
    import onnxruntime as ort
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path: str, cuda: bool = False) -> Any:     # an onnxruntime.InferenceSession (no type hints there)
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = LATENCY_THREADS      # the tool's one thread policy (core/latency.py)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=providers(cuda))


def prepare(model: nn.Module, example: torch.Tensor) -> RuntimeFn:
    with onnx_file(model, example) as path:
        sess = session(str(path), example.is_cuda)        # the session holds the graph: the file can go
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().numpy()
        if array.dtype != np.float32:
            array = array.astype(np.float32)
        return torch.from_numpy(np.asarray(sess.run(None, {name: array})[0]))
    return run


RUNTIME = Runtime("onnxruntime", "onnxruntime (CPU execution provider; CUDA's on a GPU)", prepare,
                  requires=("onnxruntime", "onnx"), tolerance=1e-4)
