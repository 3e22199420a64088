"""Snapshots on disk: a folder per stage with weights, compression state, metrics and the recipe so far.

    NN-stage/
      snapshot.json        index, stage, model record, metrics, history, recipe so far
      model.safetensors    weights (model.pt, a weights_only state dict, for quantized modules)
      state.safetensors    masks ("mask/<param>") and codebooks ("codebook/<param>"), when any
      compressed.*         the smallest file the snapshot was written to and read back from

A snapshot folder is itself a model spec: `workbench run r.yaml --model runs/x/snapshots/02-prune`
forks from it.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .errors import CheckpointError, UnreadableFile
from .export import ExportSource, export_model, formats
from .export.safetensors_format import read_safetensors
from .export.safetensors_format import save as save_weights
from .export.state_dict import cpu_state_dict
from .io import atomic_dir, jsonable, read_regular, too_deep
from .limits import MAX_JSON_DEPTH, MAX_META_BYTES
from .models import LoadedModel, from_record
from .record_checks import check_record
from .untrusted import open_zip

META = "snapshot.json"


def folder_name(index: int, stage: str) -> str:
    return f"{index:02d}-{stage}"


def save_snapshot(session, index: int, stage: str, recipe: dict | None,
                  measure: Callable[[Path], dict] | None = None) -> Path:
    """Write the session's model as snapshot `index` under out_dir/snapshots, measured, in one atomic step.

    `measure(folder)` runs inside the temporary folder (it writes the compressed file there) before the
    folder is renamed into place, so a snapshot folder under its final name is always complete: a run
    killed while measuring leaves only a hidden `.NN-stage.*` temporary folder, which readers ignore.
    """
    assert session.out_dir is not None
    target = session.out_dir / "snapshots" / folder_name(index, stage)
    with atomic_dir(target, root=session.out_dir) as tmp:     # no link between the run folder and the snapshot
        sd = cpu_state_dict(session.model)
        if all(getattr(v, "is_quantized", True) is False for v in sd.values()):
            save_weights(session.model, session.record, tmp / "model.safetensors")
        else:
            torch.save(sd, tmp / "model.pt")
        state = {f"mask/{k}": v.to(torch.uint8).cpu().contiguous() for k, v in session.masks.items()}
        state.update({f"codebook/{k}": v.float().cpu().contiguous() for k, v in session.codebooks.items()})
        if state:
            save_file(state, str(tmp / "state.safetensors"))
        metrics = measure(tmp) if measure is not None else {}
        meta = {"index": index, "stage": stage, "record": session.record, "history": session.history,
                "recipe": recipe, "metrics": metrics, "extra": jsonable(session.extra)}
        (tmp / META).write_text(json.dumps(meta, indent=2, allow_nan=False))
    return target


def read_meta(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = read_regular(path / META, max_bytes=MAX_META_BYTES)     # a regular file, not a link; size bounded
        if too_deep(data, MAX_JSON_DEPTH):
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        meta = json.loads(data)
    except UnreadableFile as exc:
        if exc.missing:
            raise CheckpointError(f"{path}: not a snapshot folder (no {META})") from None
        raise CheckpointError(f"{path}: unreadable {META} ({exc.problem})") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not a snapshot folder (no {META})") from None
    except (ValueError, RecursionError, OSError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{path}: unreadable {META} ({why})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: unreadable {META} (expected a JSON object, got {type(meta).__name__})")
    return meta


def _weights(path: Path) -> dict:
    """The snapshot's state dict: model.safetensors (checksum checked when recorded) or a weights-only model.pt."""
    if (path / "model.safetensors").exists():
        return read_safetensors(path / "model.safetensors")[0]
    if not (path / "model.pt").exists():
        raise CheckpointError(f"{path}: no model.safetensors or model.pt in the snapshot folder")
    zf = open_zip(path / "model.pt")         # refuses a zip bomb before torch reads it
    if zf is not None:
        zf.close()
    try:
        sd = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt weights in a snapshot folder
        raise CheckpointError(f"{path}: corrupt snapshot weights ({str(exc).strip()[:120]})") from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: model.pt is not a state dict")
    return sd


def load_snapshot(path: str | Path) -> LoadedModel:
    """The model of a snapshot folder: its record (snapshot.json) is validated and compared with the weights
    on the meta device before the model is built (see `models.from_record`)."""
    path = Path(path)
    meta = read_meta(path)
    record = check_record(meta.get("record"), str(path))
    loaded = from_record(_weights(path), record, str(path))
    state: dict[str, Any] = {"masks": {}, "codebooks": {}, "extra": meta.get("extra", {})}
    if (path / "state.safetensors").exists():
        try:
            saved = load_file(str(path / "state.safetensors"))
        except Exception as exc:  # noqa: BLE001 - a corrupt state file in a snapshot folder
            raise CheckpointError(f"{path}: corrupt state.safetensors ({str(exc).strip()[:120]})") from None
        for k, v in saved.items():
            kind, _, name = k.partition("/")
            if kind == "mask":
                state["masks"][name] = v.bool()
            elif kind == "codebook":
                state["codebooks"][name] = v
    loaded.state = state
    loaded.meta = {"history": meta.get("history", []), "snapshot": meta}
    return loaded


def smallest_file(session, folder: Path, check_cancel=None) -> dict:
    """Write every candidate format, verify each, keep the smallest as folder/compressed.*.

    Returns {"format", "bytes", "failed": {format: reason}}; format "none" and bytes None when no
    candidate could be written and verified (the reasons say why: a full disk, a model no format takes).
    """
    source = ExportSource.from_session(session)
    best: tuple[int, str, Path] | None = None
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=folder, prefix=".candidates-") as tmp:
        for name, fmt in formats().items():
            if not fmt.candidate:
                continue
            if check_cancel is not None:
                check_cancel()
            result = export_model(source, name, Path(tmp) / f"compressed{fmt.suffix}")
            if not result.verified:
                if not (fmt.applies and fmt.applies(source)):   # a format that does not apply is no failure
                    failed[name] = result.error or "not verified"
                continue
            if best is None or result.bytes < best[0]:
                best = (result.bytes, name, Path(result.path))
        if best is None:
            return {"format": "none", "bytes": None, "failed": failed}
        for old in folder.glob("compressed.*"):
            old.unlink()
        shutil.move(str(best[2]), folder / best[2].name)
    return {"format": best[1], "bytes": best[0], "failed": failed}
