"""Mixed precision and memory format for training loops (`precision: fp32 | bf16 | fp16`, `channels_last`).

On CUDA, bf16 and fp16 run the forward pass under `torch.autocast`; fp16 also scales the loss
(`torch.amp.GradScaler`) so small gradients do not underflow. On a CPU, bf16 autocast is offered only where the
CPU computes in bf16 natively (AVX512-BF16 or AMX: oneDNN says so); elsewhere it is slower than fp32 and is
refused with the reason, and so is fp16 (CPU autocast in fp16 has no fast kernels).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .errors import BadInput

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check(precision: str, device: torch.device | str, path: str = "precision") -> None:
    """BadInput when `precision` cannot run (fast) on `device`."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise BadInput(f"{path}: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device.type == "cpu" and precision == "fp16":
        raise BadInput(f"{path}: fp16 training runs on CUDA only; on a CPU use fp32 (or bf16 where the CPU has bf16 units)")
    if device.type == "cpu" and precision == "bf16" and not cpu_has_fast_bf16():
        raise BadInput(f"{path}: this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX), so bf16 would train "
                       "slower than fp32; use fp32 here, or bf16 on a GPU")


@dataclass
class Precision:
    """What a training loop needs: the autocast context, the loss scaler and the memory format."""
    precision: str = "fp32"
    channels_last: bool = False

    def prepare(self, model: nn.Module, device: torch.device) -> None:
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        dtype = DTYPES.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            yield

    def backward_and_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer,
                          between: Callable[[], None] | None = None) -> None:
        """Backward (scaled for fp16), `between()` on the (unscaled) gradients, then the optimiser step."""
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is not annotated
        if self.scaler.is_enabled():
            self.scaler.unscale_(opt)
        if between is not None:
            between()
        self.scaler.step(opt)
        self.scaler.update()

    def finish(self, model: nn.Module) -> None:
        if self.channels_last:
            model.to(memory_format=torch.contiguous_format)
