"""fp16 / bf16: parameters and buffers stored in 16 bits, and inference run in that precision.

The model's tensors are cast with `module.to(dtype)`; a forward pre-hook on the root casts floating
inputs to the same dtype and a forward hook casts the output back to float32, so callers keep
passing and receiving float32. On CUDA both run natively and fast. On a CPU without native 16-bit
arithmetic they run, but slowly: on the 2-core AMD EPYC used for the benchmarks `sample:digits_resnet`
took 1.3 ms in fp32, 116 ms in bf16 and 127 ms in fp16 (batch 1); use them there for storage.
The `cast` transform replays the cast and hooks on a freshly built model, so snapshots reload.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import transforms

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _cast_inputs(dtype: torch.dtype) -> Callable[[nn.Module, tuple[Any, ...]], tuple[Any, ...]]:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    return hook


def _outputs_to_float(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.float()
    return output


def cast_model(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    model = model.to(dtype)
    model.register_forward_pre_hook(_cast_inputs(dtype))
    model.register_forward_hook(_outputs_to_float)
    return model


def _replay_cast(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    return cast_model(model, getattr(torch, t["dtype"]))


transforms.register("cast")(_replay_cast)
