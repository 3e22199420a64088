"""`state_dict`: a plain PyTorch state dict (.pt), loadable with torch.load(weights_only=True)."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import load_state_into, rebuild
from . import ExportSource, Format


def cpu_state_dict(model: nn.Module) -> OrderedDict[str, Any]:
    """The model's state dict on the CPU, keeping the per-module version metadata that quantized modules
    (torch.ao Linear: a dtype entry and a packed (weight, bias) tuple) need to load it back."""
    raw = model.state_dict()
    sd = OrderedDict((k, v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in raw.items())
    sd._metadata = getattr(raw, "_metadata", None)  # type: ignore[attr-defined]  # torch's own attribute, unknown to typeshed's OrderedDict
    return sd


def write(source: ExportSource, path: Path) -> dict[str, Any]:
    torch.save(cpu_state_dict(source.model), path)
    return {}


def read(path: Path, record: dict[str, Any]) -> nn.Module:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = rebuild(record)
    load_state_into(model, sd, record["base"])
    return model.eval()


FORMAT = Format("state_dict", ".pt", "PyTorch state dict (torch.load weights_only=True)", write, read, tolerance=0.0,
                candidate=True)  # the only file an int8 (torch.ao quantized) model can be written to
