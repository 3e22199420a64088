"""`safetensors`: the weights plus the model record in the header, so the file reloads without --arch."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from ..errors import CheckpointError
from ..models import from_record
from . import ExportSource, Format


def plain_state_dict(model) -> dict:
    sd = {}
    for k, v in model.state_dict().items():
        if not hasattr(v, "is_quantized") or v.is_quantized:
            raise TypeError(f"{k} is not a plain tensor (quantized modules need the state_dict format)")
        sd[k] = v.detach().cpu().contiguous().clone()
    return sd


def save(model, record: dict, path: Path) -> None:
    save_file(plain_state_dict(model), str(path), metadata={"workbench_record": json.dumps(record)})


def write(source: ExportSource, path: Path) -> dict:
    save(source.model, source.record, path)
    return {}


def read_safetensors(path: Path) -> tuple[dict, dict | None]:
    """(tensors, the workbench record or None) of a .safetensors file."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    try:
        sd = load_file(str(path))
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        record = json.loads(meta["workbench_record"]) if "workbench_record" in meta else None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({str(exc)[:120]})") from None
    return sd, record


def read(path: Path, record: dict):
    sd, own = read_safetensors(path)
    if own is None:
        raise CheckpointError(f"{path}: no workbench record in the file")
    return from_record(sd, own, str(path)).module.eval()


def _applies(source: ExportSource) -> str | None:
    for k, v in source.model.state_dict().items():
        if not hasattr(v, "is_quantized") or v.is_quantized:
            return f"safetensors holds plain tensors only; {k} is quantized (use state_dict or onnx)"
    return None


FORMAT = Format("safetensors", ".safetensors", "safetensors weights + architecture record", write, read,
                tolerance=0.0, candidate=True, applies=_applies)
