"""Crafted hostile and corrupt model files for the security tests (no test imports these from conftest)."""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import torch


class Payload:
    """Unpickling this creates `marker`: proof that a file ran code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> Path:
    """A copy of a zip archive with some members replaced and some added."""
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
        for info in zi.infolist():
            zo.writestr(info, replace.get(info.filename, zi.read(info.filename)))
        for name, data in (add or {}).items():
            zo.writestr(name, data)
    return dst


def pt2_variants(good: Path, folder: Path, marker: str) -> dict[str, Path]:
    """Every way a .pt2 archive can make torch.export.load unpickle or load native code."""
    with zipfile.ZipFile(good) as zf:
        names = zf.namelist()
        weights_cfg = json.loads(zf.read("archive/data/weights/model_weights_config.json"))
    first_weight = next(iter(weights_cfg["config"]))
    path_name = weights_cfg["config"][first_weight]["path_name"]
    weights_cfg["config"][first_weight]["use_pickle"] = True
    evil = pickled(Payload(marker))
    const_cfg = lambda prefix: json.dumps({"config": {"c": {"path_name": f"{prefix}0"}}}).encode()
    variants = {
        "sample_inputs": ({"archive/data/sample_inputs/model.pt": evil}, None),
        "pickled_weight": ({"archive/data/weights/model_weights_config.json": json.dumps(weights_cfg).encode(),
                            f"archive/data/weights/{path_name}": evil}, None),
        "opaque_constant": ({"archive/data/constants/model_constants_config.json": const_cfg("opaque_obj_")},
                            {"archive/data/constants/opaque_obj_0": pickle.dumps(Payload(marker))}),
        "custom_constant": ({"archive/data/constants/model_constants_config.json": const_cfg("custom_obj_")},
                            {"archive/data/constants/custom_obj_0": evil}),
        "aotinductor": ({}, {"archive/data/aotinductor/model/model.so": b"\x7fELF"}),
    }
    assert "archive/data/sample_inputs/model.pt" in names
    return {name: rewrite_zip(good, folder / f"{name}.pt2", rep, add) for name, (rep, add) in variants.items()}


def legacy_pt2(folder: Path, marker: str) -> Path:
    """The pre-archive .pt2 layout (a `version` file), which torch reads through pickle."""
    path = folder / "legacy.pt2"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("version", "8.0")
        zf.writestr("serialized_state_dict.pt", pickled(Payload(marker)))
    return path


def zip_bomb(path: Path, expanded: int = 2**29) -> Path:
    """A small .pt whose single member inflates to `expanded` bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("archive/data.pkl", "w", force_zip64=True) as fh:
            chunk = bytes(2**24)
            for _ in range(expanded // len(chunk)):
                fh.write(chunk)
    return path
