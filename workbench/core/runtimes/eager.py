"""`eager`: PyTorch as it is (the reference every other runtime is verified against and compared with)."""
from __future__ import annotations

import torch
from torch import nn

from .base import Runtime, RuntimeFn


def prepare(model: nn.Module, example: torch.Tensor) -> RuntimeFn:
    return model.eval()


RUNTIME = Runtime("eager", "PyTorch eager (the default)", prepare, tolerance=0.0)
