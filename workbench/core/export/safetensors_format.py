"""`safetensors`: the weights plus the model record in the header, so the file reloads without --arch.

The header metadata holds `workbench_record` (the record, JSON) and `workbench_sha256`, a digest of
every tensor (name, dtype, shape and bytes, in name order): a file whose weights were altered after
writing (a flipped bit on disk or in transfer) is refused. Files without a digest (older ones, other
tools') still load.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import CheckpointError, UnreadableFile
from ..io import parse_json
from ..models import from_record
from . import ExportSource, Format

RECORD_KEY = "workbench_record"
DIGEST_KEY = "workbench_sha256"


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    sd = {}
    for k, v in model.state_dict().items():
        if not hasattr(v, "is_quantized") or v.is_quantized:
            raise TypeError(f"{k} is not a plain tensor (quantized modules need the state_dict format)")
        sd[k] = v.detach().cpu().contiguous().clone()
    return sd


def digest(sd: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(sd):
        t = sd[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # type: ignore[arg-type]  # an ndarray is a buffer; numpy's stubs say so for Python 3.12+ only
    return h.hexdigest()


def save(model: nn.Module, record: dict[str, Any], path: Path) -> str:
    """Write the weights with the record and their digest; returns the digest (snapshots record it too)."""
    sd = plain_state_dict(model)
    checksum = digest(sd)
    save_file(sd, str(path), metadata={RECORD_KEY: json.dumps(record), DIGEST_KEY: checksum})
    return checksum


def write(source: ExportSource, path: Path) -> dict[str, Any]:
    save(source.model, source.record, path)
    return {}


def read_safetensors(path: Path, expected: str | None = None) -> tuple[dict[str, torch.Tensor], Any]:
    """(tensors, the workbench record or None) of a .safetensors file; its checksum is checked when it has one,
    and against `expected` (the digest a snapshot's snapshot.json records) when given.

    The record is returned as found (any JSON value): `models.check_record` validates it."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({str(exc).strip()[:120]})") from None
    try:
        record = parse_json(meta[RECORD_KEY], f"{path}: {RECORD_KEY}") if RECORD_KEY in meta else None
    except UnreadableFile as exc:             # not JSON, nested too deep, NaN
        raise CheckpointError(f"{path}: unreadable {RECORD_KEY} in the header ({exc.problem})") from None
    if DIGEST_KEY in meta or expected is not None:
        actual = digest(sd)
        if DIGEST_KEY in meta and meta[DIGEST_KEY] != actual:
            raise CheckpointError(f"{path}: weights do not match the recorded checksum (corrupted?)")
        if expected is not None and expected != actual:
            raise CheckpointError(f"{path}: weights do not match the checksum recorded in snapshot.json (corrupted "
                                  "or replaced?)")
    return sd, record


def read_safetensors_record(path: Path) -> Any:
    """Only the workbench record from a .safetensors header (no tensors read); None when it has none."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        return parse_json(meta[RECORD_KEY], f"{path}: {RECORD_KEY}") if RECORD_KEY in meta else None
    except (SafetensorError, OSError, ValueError, RuntimeError, UnreadableFile):
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file") from None


def read(path: Path, record: dict[str, Any]) -> nn.Module:
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
                tolerance=0.0, candidate=True, applies=_applies,
                after_int8="safetensors holds plain tensors only, not torch.ao int8 ones; export state_dict after "
                "Quantize, or safetensors before it")
