"""`sparse`: each tensor as a bitmap of non-zeros plus the non-zero values, zlib-compressed (.npz).

A simple, real sparse file: it is what a snapshot's `compressed_bytes` reports when it beats the
dense file and no packed (Deep Compression) file applies.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ..io import parse_json
from ..models import load_state_into, rebuild
from . import ExportSource, Format
from .safetensors_format import plain_state_dict


def write(source: ExportSource, path: Path) -> dict[str, Any]:
    arrays: dict[str, npt.NDArray[Any]] = {}
    index: dict[str, dict[str, Any]] = {}
    for i, (name, t) in enumerate(plain_state_dict(source.model).items()):
        a = t.numpy()
        key = f"t{i}"
        index[key] = {"name": name, "shape": list(a.shape), "dtype": str(a.dtype)}
        flat = a.reshape(-1)
        if a.dtype.kind == "f" and flat.size and np.count_nonzero(flat) < 0.7 * flat.size:
            nz = flat != 0
            arrays[key + "_bits"] = np.packbits(nz)
            arrays[key + "_vals"] = flat[nz]
        else:
            arrays[key] = a
    arrays["_index"] = np.frombuffer(json.dumps({"tensors": index}).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle: bool; the keys are t0, t0_bits, ...
    return {}


def load_state(path: Path) -> dict[str, torch.Tensor]:
    with np.load(path, allow_pickle=False) as z:
        index = parse_json(bytes(z["_index"]), f"{path}: _index")["tensors"]    # bounded depth, no NaN
        sd = {}
        for key, info in index.items():
            shape, dtype = info["shape"], np.dtype(info["dtype"])
            if key in z.files:
                a = z[key]
            else:
                n = int(np.prod(shape))
                nz = np.unpackbits(z[key + "_bits"], count=n).astype(bool)
                a = np.zeros(n, dtype=dtype)
                a[nz] = z[key + "_vals"]
            sd[info["name"]] = torch.from_numpy(np.ascontiguousarray(a).reshape(shape))
    return sd


def read(path: Path, record: dict[str, Any]) -> nn.Module:
    model = rebuild(record)
    load_state_into(model, load_state(path), record["base"])
    return model.eval()


FORMAT = Format("sparse", ".sparse.npz", "non-zero bitmap + values, zlib-compressed", write, read,
                tolerance=0.0, candidate=True,
                after_int8="sparse holds plain float tensors only; export state_dict after Quantize, or sparse before it")
