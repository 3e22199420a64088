"""Atomic file writes: write to a temporary file beside the target, fsync, then rename over it.

Temporary files and folders are created private (mode 0600/0700); just before the rename they get the
permissions a plain `open()` or `mkdir()` would have given (0666/0777 less the umask), so exported
files are as readable as any other file the user writes.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _read_umask() -> int:
    mask = os.umask(0o022)   # the only way to read it is to set it; read once, at import, before any thread
    os.umask(mask)
    return mask


UMASK = _read_umask()


def audit(path: str | os.PathLike) -> None:
    """With WORKBENCH_WRITE_LOG=FILE set, every file or folder the workbench writes is logged there as
    "<rank> <pid> <path>" (an audit trail: what did a run write, and which process wrote it)."""
    log = os.environ.get("WORKBENCH_WRITE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.environ.get('RANK', '0')} {os.getpid()} {os.fspath(path)}\n")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    audit(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary folder; on success it is renamed to `path` (replacing an old one)."""
    path = Path(path)
    audit(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~UMASK)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def jsonable(obj: Any) -> Any:
    """`obj` as strict JSON values: a value JSON cannot hold becomes null or text, never drops its neighbours."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:      # numpy / torch scalars
        return jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return str(obj)
