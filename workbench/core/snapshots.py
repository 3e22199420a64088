"""Snapshots on disk: a folder per stage with weights, compression state, metrics and the recipe so far.

    NN-stage/
      snapshot.json        index, stage, model record, metrics, history, recipe so far
      model.safetensors    weights (model.pt, a weights_only state dict, for quantized modules)
      state.safetensors    masks ("mask/<param>") and codebooks ("codebook/<param>"), when any
      compressed.*         the smallest file the snapshot was written to and read back from

snapshot.json records a digest of each weights file under "sha256" (the safetensors files: the same tensor
digest as their header's `workbench_sha256`; model.pt: of its bytes), checked when the snapshot is loaded.
Snapshots written before digests were recorded load unchecked (their safetensors headers still are).

A snapshot folder is itself a model spec: `workbench run r.yaml --model runs/x/snapshots/02-prune`
forks from it.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch
from safetensors.torch import save_file

from .errors import CheckpointError, UnreadableFile
from .export import ExportSource, export_model, formats
from .export.safetensors_format import DIGEST_KEY, digest, read_safetensors
from .export.safetensors_format import save as save_weights
from .export.state_dict import cpu_state_dict
from .io import atomic_dir, jsonable, read_regular, too_deep
from .limits import MAX_JSON_DEPTH, MAX_META_BYTES
from .models import LoadedModel, from_record
from .record_checks import check_record
from .untrusted import file_sha256, open_zip

if TYPE_CHECKING:                      # above this module: for annotations only
    from .session import Session

META = "snapshot.json"
DIGESTS = "sha256"                       # snapshot.json: {weights file name: digest}
WEIGHT_FILES = ("model.safetensors", "model.pt", "state.safetensors")


def folder_name(index: int, stage: str) -> str:
    return f"{index:02d}-{stage}"


def save_snapshot(session: Session, index: int, stage: str, recipe: dict[str, Any] | None,
                  measure: Callable[[Path], dict[str, Any]] | None = None) -> Path:
    """Write the session's model as snapshot `index` under out_dir/snapshots, measured, in one atomic step.

    `measure(folder)` runs inside the temporary folder (it writes the compressed file there) before the
    folder is renamed into place, so a snapshot folder under its final name is always complete: a run
    killed while measuring leaves only a hidden `.NN-stage.*` temporary folder, which readers ignore.
    """
    assert session.out_dir is not None
    target = session.out_dir / "snapshots" / folder_name(index, stage)
    with atomic_dir(target, root=session.out_dir) as tmp:     # no link between the run folder and the snapshot
        sd = cpu_state_dict(session.model)
        digests: dict[str, str] = {}
        if all(getattr(v, "is_quantized", True) is False for v in sd.values()):
            digests["model.safetensors"] = save_weights(session.model, session.record, tmp / "model.safetensors")
        else:
            torch.save(sd, tmp / "model.pt")
            digests["model.pt"] = file_sha256(tmp / "model.pt")
        state = {f"mask/{k}": v.to(torch.uint8).cpu().contiguous() for k, v in session.masks.items()}
        state.update({f"codebook/{k}": v.float().cpu().contiguous() for k, v in session.codebooks.items()})
        if state:
            digests["state.safetensors"] = digest(state)
            save_file(state, str(tmp / "state.safetensors"), metadata={DIGEST_KEY: digests["state.safetensors"]})
        metrics = measure(tmp) if measure is not None else {}
        meta = {"index": index, "stage": stage, "record": session.record, "history": session.history,
                "recipe": recipe, "metrics": metrics, "extra": jsonable(session.extra), DIGESTS: digests}
        (tmp / META).write_text(json.dumps(meta, indent=2, allow_nan=False))
    return target


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = read_regular(path / META, max_bytes=MAX_META_BYTES)     # a regular file, not a link; size bounded
        if too_deep(data, MAX_JSON_DEPTH):
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        meta = json.loads(data, parse_constant=_non_finite, parse_float=_finite_float)
    except UnreadableFile as exc:
        if exc.missing:
            raise CheckpointError(f"{path}: not a snapshot folder (no {META})") from None
        raise CheckpointError(f"{path}: unreadable {META} ({exc.problem})") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not a snapshot folder (no {META})") from None
    except _NonFinite as exc:
        raise CheckpointError(f"{path / META}: holds a non-finite number ({exc}); refused") from None
    except (ValueError, RecursionError, OSError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{path}: unreadable {META} ({why})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: unreadable {META} (expected a JSON object, got {type(meta).__name__})")
    return meta


class _NonFinite(ValueError):
    pass


def _non_finite(word: str) -> NoReturn:
    raise _NonFinite(word)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):          # 1e400 parses to inf
        raise _NonFinite(text[:40])
    return value


def _expected_digest(path: Path, meta: dict[str, Any], name: str) -> str | None:
    """The digest snapshot.json records for the weights file `name` (None for snapshots older than digests); a
    snapshot that records digests must record one for each of its weights files."""
    digests = meta.get(DIGESTS)
    if digests is None:
        return None
    if not isinstance(digests, dict) or not all(isinstance(v, str) and len(v) == 64 for v in digests.values()):
        raise CheckpointError(f"{path / META}: {DIGESTS} must map file names to sha256 digests")
    if name not in digests:
        raise CheckpointError(f"{path / name}: snapshot.json records no digest for it (added after the snapshot "
                              "was written?)")
    found: str = digests[name]
    return found


def _check_recorded_files(path: Path, meta: dict[str, Any]) -> None:
    """Before any weights are read: each weights file snapshot.json records a digest for is there (a missing
    state.safetensors would drop the masks), and each one there has a digest (none was planted later)."""
    digests = meta.get(DIGESTS)
    for name in digests if isinstance(digests, dict) else []:
        if name in WEIGHT_FILES and not (path / name).is_file():
            raise CheckpointError(f"{path / name}: recorded in snapshot.json but missing from the snapshot folder")
    for name in WEIGHT_FILES:
        if (path / name).exists():
            _expected_digest(path, meta, name)


def _weights(path: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The snapshot's state dict: model.safetensors (checksum checked when recorded) or a weights-only model.pt."""
    if (path / "model.safetensors").exists():
        return read_safetensors(path / "model.safetensors", _expected_digest(path, meta, "model.safetensors"))[0]
    if not (path / "model.pt").exists():
        raise CheckpointError(f"{path}: no model.safetensors or model.pt in the snapshot folder")
    expected = _expected_digest(path, meta, "model.pt")
    if expected is not None and file_sha256(path / "model.pt") != expected:
        raise CheckpointError(f"{path / 'model.pt'}: weights do not match the checksum recorded in snapshot.json "
                              "(corrupted or replaced?)")
    zf = open_zip(path / "model.pt")         # refuses a zip bomb before torch reads it
    if zf is not None:
        zf.close()
    try:
        with warnings.catch_warnings():      # torch's deprecation notes on quantized tensors: not the user's concern
            warnings.simplefilter("ignore", UserWarning)
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
    _check_recorded_files(path, meta)
    loaded = from_record(_weights(path, meta), record, str(path))
    state: dict[str, Any] = {"masks": {}, "codebooks": {}, "extra": meta.get("extra", {})}
    if (path / "state.safetensors").exists():
        saved = read_safetensors(path / "state.safetensors", _expected_digest(path, meta, "state.safetensors"))[0]
        params = {k: tuple(p.shape) for k, p in loaded.module.named_parameters(remove_duplicate=False)}
        for k, v in saved.items():
            kind, _, name = k.partition("/")
            if kind in ("mask", "codebook") and name not in params:
                raise CheckpointError(f"{path / 'state.safetensors'}: {k} names no parameter of the model")
            if kind == "mask" and tuple(v.shape) != params[name]:
                raise CheckpointError(f"{path / 'state.safetensors'}: {k} has shape {list(v.shape)}, but the "
                                      f"parameter has {list(params[name])}")
            if kind == "mask":
                state["masks"][name] = v.bool()
            elif kind == "codebook":
                state["codebooks"][name] = v
    loaded.state = state
    loaded.meta = {"history": meta.get("history", []), "snapshot": meta}
    return loaded


def smallest_file(session: Session, folder: Path, check_cancel: Callable[[], None] | None = None) -> dict[str, Any]:
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
