"""Model files that can carry code, and how each is checked before anything in it is loaded.

A file is *trusted* only when the user says so (`--trust` on the command line, an explicit choice in the
GUI). Without trust:

- `.pt`/`.pth` pickles load through `torch.load(weights_only=True)`, which refuses any Python object
  that is not a tensor or plain container;
- a `.pt2` (torch.export) archive is a program and is refused: its graph can call any operator (some
  create or overwrite files, allocate without bound) and `torch.export.load` unpickles sample inputs,
  weights and constants marked `use_pickle`, opaque and TorchScript constants, the older archive layout,
  and loads AOTInductor shared libraries. The archive is still checked (zip bounds, CRCs) and scanned so
  that the refusal names what in it would unpickle; the workbench's safe format is its own record
  (safetensors weights + the JSON record);
- a TorchScript file is code (its `forward` and `__setstate__` run TorchScript, which can write files,
  loop forever or allocate without bound) and is refused;
- a zip archive whose entries would expand beyond a bound (a zip bomb) is refused before reading.

`docs/security.md` lists what is trusted, refused and checked, and the hostile inputs tested.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .errors import BadInput, CheckpointError, NeedsTrust, clip
from .io import open_regular, read_json
from .limits import MAX_REPORT_BYTES

# A zip member may expand this much beyond the archive's size before it is refused as a zip bomb.
# torch.save and torch.export.save store tensors uncompressed, so genuine files expand 1x.
ZIP_SLACK_BYTES = 64 * 2**20
ZIP_MAX_EXPANSION = 4

REPORT_SEARCH_DEPTH = 4   # folders above an export searched for the report.json of its run (exports/ and dir: a/b)

TRUST_HINT = "pass --trust (or tick 'trust this file' in the GUI) only if you trust where it came from"


PT2_IS_CODE = ("a torch.export archive is a program: its graph can call any operator (some create or overwrite "
               "files) and its constants and sample inputs can unpickle Python objects")
SAFE_FORMAT_HINT = ("the workbench's safe format is its own record (safetensors weights + JSON record): ask for "
                    "`workbench export MODEL --format safetensors`")


def refuse(path: str | Path, what: str, alternative: str = "") -> NeedsTrust:
    """The error for a file that can run code and is not trusted; its `reason` (what would run) is what the GUI's
    "Trust this file?" question shows."""
    more = f"; {alternative}" if alternative else ""
    return NeedsTrust(f"{path}: refused: {what}, so loading it could run code; {TRUST_HINT}{more}",
                      reason=what + (f" ({alternative})" if alternative else ""))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (the digest recorded for the archives and `model.pt` files the workbench writes)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def recorded_export_digest(path: str | Path) -> tuple[Path, str] | None:
    """(report.json, sha256) when the report of a run folder above `path` lists it as one of its exports with a
    digest (the .pt2 and TorchScript files the workbench writes); None otherwise. An unreadable or oversized
    report is no record (the run folder's readers report it)."""
    try:
        target = Path(path).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    for folder in list(target.parents)[:REPORT_SEARCH_DEPTH]:
        report = folder / "report.json"
        if not report.exists():
            continue
        try:
            data = read_json(report, max_bytes=MAX_REPORT_BYTES)   # a regular file, not a link, bounded
        except BadInput:
            continue
        exports = data.get("exports") if isinstance(data, dict) else None
        for entry in exports if isinstance(exports, list) else []:
            found = entry.get("breakdown") if isinstance(entry, dict) else None
            digest = found.get("sha256") if isinstance(found, dict) else None
            if isinstance(digest, str) and isinstance(entry.get("path"), str) and _same(folder / entry["path"], target):
                return report, digest
    return None


def check_recorded_digest(path: str | Path) -> None:
    """CheckpointError when the workbench's own export at `path` no longer matches the digest its run recorded."""
    found = recorded_export_digest(path)
    if found is not None and file_sha256(path) != found[1]:
        raise CheckpointError(f"{path}: its bytes do not match the sha256 recorded for it in {found[0]} "
                              "(corrupted or replaced after the export)")


def _same(a: Path, resolved: Path) -> bool:
    try:
        return a.resolve() == resolved
    except (OSError, ValueError, RuntimeError):
        return False


def open_zip(path: str | Path) -> zipfile.ZipFile | None:
    """The file as a zip archive, or None when it is not one. Raises for a zip bomb or a member whose bytes do
    not match its CRC-32 (torch's own zip reader does not check them, so flipped weight bytes would load)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    check_zip_bounds(path, zf)
    try:
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        zf.close()
        raise CheckpointError(f"{path}: corrupt archive ({_first_line(exc)})") from None
    if bad is not None:
        zf.close()
        raise CheckpointError(f"{path}: corrupt archive: {bad} does not match its checksum")
    return zf


def check_zip_bounds(path: str | Path, zf: zipfile.ZipFile) -> None:
    size = os.path.getsize(path)
    expanded = sum(max(0, i.file_size) for i in zf.infolist())
    limit = ZIP_MAX_EXPANSION * size + ZIP_SLACK_BYTES
    if expanded > limit:
        zf.close()
        raise CheckpointError(f"{path}: its {size:,}-byte archive would expand to {expanded:,} bytes "
                              f"(more than {limit:,}); refused as a zip bomb")


def is_torchscript_zip(zf: zipfile.ZipFile) -> bool:
    names = zf.namelist()
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def is_torchscript(path: str | Path) -> bool:
    zf = open_zip(path)
    if zf is None:
        return False
    with zf:
        return is_torchscript_zip(zf)


def _archive_root(names: list[str]) -> str:
    for n in names:
        if n.endswith("archive_format"):
            return n[: -len("archive_format")]
    return ""


def _configs(zf: zipfile.ZipFile, root: str, folder: str, suffix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in zf.namelist():
        if name.startswith(f"{root}data/{folder}/") and name.endswith(suffix):
            try:
                raw = json.loads(zf.read(name))
            except (ValueError, UnicodeDecodeError):
                raise CheckpointError(f"{name}: unreadable JSON in the .pt2 archive") from None
            config = raw.get("config") if isinstance(raw, dict) else None
            if not isinstance(config, dict):
                raise CheckpointError(f"{name}: malformed configuration in the .pt2 archive")
            yield name, config


def pt2_code_risks(zf: zipfile.ZipFile) -> list[str]:
    """What in a .pt2 archive would run code (unpickle objects, load native code) when loaded; empty: none."""
    names = zf.namelist()
    if is_torchscript_zip(zf):
        return ["it is a TorchScript archive"]
    root = _archive_root(names)
    if not root and "version" in names:
        return ["it uses the older .pt2 layout, which is read through pickle"]
    if not any(n.startswith(f"{root}models/") and n.endswith(".json") for n in names):
        raise CheckpointError("not a torch.export archive (no models/*.json)")
    risks = []
    if any(n.startswith(f"{root}data/aotinductor/") for n in names):
        risks.append("it holds AOTInductor native code (data/aotinductor/)")
    for _, config in _configs(zf, root, "weights", "_weights_config.json"):
        pickled = [k for k, v in config.items() if isinstance(v, dict) and v.get("use_pickle")]
        if pickled:
            risks.append(f"its weights {', '.join(pickled[:3])} are stored as pickles")
    for _, config in _configs(zf, root, "constants", "_constants_config.json"):
        for key, v in config.items():
            path_name = str(v.get("path_name", "")) if isinstance(v, dict) else ""
            if (isinstance(v, dict) and v.get("use_pickle")) or not path_name.startswith("tensor_"):
                risks.append(f"its constant {key} is a pickled Python object")
                break
    for name in names:
        if name.startswith(f"{root}data/sample_inputs/"):
            try:
                torch.load(io.BytesIO(zf.read(name)), map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001 - torch.export.load would retry this with weights_only=False
                risks.append(f"its sample inputs ({name.rsplit('/', 1)[-1]}) are pickled Python objects")
    return risks


@contextlib.contextmanager
def quiet_torch_logs() -> Iterator[None]:
    """torch.export logs whole tracebacks for a file it cannot read; the caller reports one line instead."""
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export", "torch.export.pt2_archive")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _pt2_refusal(path: str | Path, zf: zipfile.ZipFile) -> CheckpointError:
    """Why an untrusted .pt2 is not loaded: it is a program, whatever the scan says; the scan only adds what in
    it would unpickle, or that its layout is not one the scan knows (torch may still load it). Bytes that zip
    cannot read are called corrupt instead: trust would not help."""
    try:
        risks = pt2_code_risks(zf)
    except CheckpointError as exc:
        risks = [f"its layout is not the usual one: {exc.message}"]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        return CheckpointError(f"{path}: corrupt .pt2 archive ({_first_line(exc)})")
    found = f" (the scan also found: {'; '.join(risks)})" if risks else ""
    return refuse(path, PT2_IS_CODE + found, SAFE_FORMAT_HINT)


def load_pt2_program(path: str | Path, trust: bool) -> torch.export.ExportedProgram:
    """A torch.export program from a .pt2 file: only with trust (it is a program). Without trust a corrupt archive
    is called corrupt, and the refusal names the parts that would unpickle, if any."""
    zf = open_zip(path)
    if zf is None:
        raise CheckpointError(f"{path}: not a .pt2 archive (corrupt, truncated or another kind of file)")
    with zf:
        if not trust:
            raise _pt2_refusal(path, zf)
    try:
        with quiet_torch_logs():
            return torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not a readable program
        raise CheckpointError(f"{path}: not a readable .pt2 program ({type(exc).__name__}: {_first_line(exc)})") from None


def trainable_module(program: torch.export.ExportedProgram) -> torch.nn.Module:
    """`program.module()` with `train()`/`eval()` working again (they only set flags: the graph is fixed)."""
    module = program.module()
    for name in ("train", "eval"):
        module.__dict__.pop(name, None)
    return module


def load_torchscript(path: str | Path, trust: bool) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    if not trust:
        raise refuse(path, "it is a TorchScript program (its code runs on load and on every call)")
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            extra = {"workbench.json": ""}
            module: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]  # torch.jit.load is not annotated
                str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not a readable program
        raise CheckpointError(f"{path}: not a readable TorchScript file ({_first_line(exc)})") from None
    try:
        info = json.loads(extra["workbench.json"]) if extra["workbench.json"] else {}
    except ValueError:
        info = {}
    return module, info if isinstance(info, dict) else {}


def load_pickle(path: str | Path, trust: bool) -> Any:
    """A `torch.save` file: weights only, unless trusted. Empty, random or bomb files are corrupt, not 'pickles'."""
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    zf = open_zip(path)          # refuses zip bombs before torch reads a byte
    if zf is not None:
        zf.close()
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        unsafe = unsafe_globals(path)
        if unsafe == []:
            raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint") from None
        if not trust:
            named = f": {clip(', '.join(unsafe[:3]), 120)}" if unsafe else " (an old-format checkpoint, not listed)"
            raise refuse(path, f"it holds pickled Python objects (not only tensors){named}") from None
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not a readable program
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_first_line(exc)})") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not a readable program
        raise CheckpointError(f"{path}: cannot be unpickled ({type(exc).__name__}: {_first_line(exc)})") from None


_LEGACY_MAGIC = pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)[2:]   # an old torch.save file's start


def unsafe_globals(path: str | Path) -> list[str] | None:
    """What a `torch.save` file would unpickle beyond weights: the globals torch's weights-only reader refuses, as
    torch lists them (`get_unsafe_globals_in_checkpoint`); [] when there are none (a weights-only failure is then
    corruption) or the file is no checkpoint at all; None for an old-format (pre-1.6) checkpoint, which torch
    cannot list."""
    if zipfile.is_zipfile(path):
        try:
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:  # noqa: BLE001 - an archive torch cannot list is corrupt
            return []
    with open_regular(path, follow_links=True) as fh:       # torch.load has just read it
        head = fh.read(2 + len(_LEGACY_MAGIC))
    return None if head[:1] == b"\x80" and head[2:] == _LEGACY_MAGIC else []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
