"""`tensorrt` (the `workbench[tensorrt]` extra, CUDA GPUs only): the model's ONNX file parsed by TensorRT and built
into an engine for the example's shape (float32), run on torch's current CUDA stream. Refused with the reason where
TensorRT or a GPU is absent."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Runtime, RuntimeFn, Unsupported, no_gpu, onnx_file


def _engine(model: nn.Module, example: torch.Tensor, logger: Any) -> Any:
    import tensorrt as trt
    builder = trt.Builder(logger)
    network = builder.create_network(0)                  # TensorRT 10: explicit batch always
    parser = trt.OnnxParser(network, logger)
    with onnx_file(model, example) as path:
        if not parser.parse_from_file(str(path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise Unsupported(f"TensorRT's ONNX parser refused the model: {errors[:300]}")
    config = builder.create_builder_config()
    config.clear_flag(trt.BuilderFlag.TF32)              # float32 as eager computes it (TF32 would miss the tolerance)
    profile = builder.create_optimization_profile()
    shape = tuple(example.shape)
    profile.set_shape(network.get_input(0).name, shape, shape, shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise Unsupported("TensorRT could not build an engine for the model")
    return trt.Runtime(logger).deserialize_cuda_engine(serialized)


def prepare(model: nn.Module, example: torch.Tensor) -> RuntimeFn:
    import tensorrt as trt
    if not example.is_cuda:
        raise Unsupported("TensorRT runs on a CUDA device; the example is on the CPU")
    engine = _engine(model, example, trt.Logger(trt.Logger.WARNING))
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or not outputs:
        raise Unsupported(f"the TensorRT engine has {len(inputs)} inputs and {len(outputs)} outputs (1 and 1+ expected)")
    context.set_input_shape(inputs[0], tuple(example.shape))
    output = torch.empty(tuple(context.get_tensor_shape(outputs[0])), dtype=torch.float32, device=example.device)
    extra = [torch.empty(tuple(context.get_tensor_shape(n)), dtype=torch.float32, device=example.device) for n in outputs[1:]]
    for name, buffer in zip(outputs, [output, *extra]):
        context.set_tensor_address(name, buffer.data_ptr())

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(example.device, torch.float32).contiguous()
        context.set_tensor_address(inputs[0], x.data_ptr())
        if not context.execute_async_v3(torch.cuda.current_stream(example.device).cuda_stream):
            raise RuntimeError("TensorRT could not run the engine")
        return output                                    # ordered on torch's stream: reading it waits for the engine
    return run


RUNTIME = Runtime("tensorrt", "TensorRT (CUDA GPUs)", prepare, extra="tensorrt", requires=("tensorrt",), check=no_gpu,
                  tolerance=1e-3, needs_gpu=True)
