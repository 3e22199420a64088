"""`torchscript`: a traced TorchScript module (.ts), loadable with `torch.jit.load` from C++ or Python."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..untrusted import file_sha256, load_torchscript
from . import ExportSource, Format


def write(source: ExportSource, path: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.jit is deprecated in favour of torch.export, but still runs everywhere
        traced = torch.jit.trace(source.model.eval(), source.example, check_trace=False)  # type: ignore[no-untyped-call]  # torch.jit.trace is unannotated
        info = {"input_shape": list(source.example.shape[1:]), "num_classes": source.record.get("num_classes")}
        torch.jit.save(traced, str(path), _extra_files={"workbench.json": json.dumps(info)})
    return {"sha256": file_sha256(path)}   # in report.json: checked when the workbench opens its export again


def read(path: Path, record: dict[str, Any]) -> nn.Module:
    module: nn.Module = load_torchscript(path, trust=True)[0]   # the file we have just written
    return module.eval()


FORMAT = Format("torchscript", ".ts", "TorchScript (traced; torch.jit.load in Python or C++)", write, read,
                tolerance=1e-5,
                after_int8="torch.ao int8 models are not traced to TorchScript here; export torchscript before "
                "Quantize, or state_dict after it")
