"""`torchscript`: a traced TorchScript module (.ts), loadable with `torch.jit.load` from C++ or Python."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from . import ExportSource, Format


def write(source: ExportSource, path: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.jit is deprecated in favour of torch.export, but still runs everywhere
        traced = torch.jit.trace(source.model.eval(), source.example, check_trace=False)
        torch.jit.save(traced, str(path))
    return {}


def read(path: Path, record: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location="cpu").eval()


FORMAT = Format("torchscript", ".ts", "TorchScript (traced; torch.jit.load in Python or C++)", write, read,
                tolerance=1e-5)
