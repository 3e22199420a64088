"""Atomic file writes that never follow a link, and bounded reads of JSON files.

Writes: a temporary file beside the target (created with O_EXCL, so never through a link), fsync, then a
rename over the target (a rename replaces a link, it never writes through it). Temporary files and folders
are created private (mode 0600/0700); just before the rename they get the permissions a plain `open()` or
`mkdir()` would have given (0666/0777 less the umask), so exported files are as readable as any other file
the user writes. With `root=` (a run folder), every folder between `root` and the target must be a real
folder, not a link: a link planted there is refused instead of written through.

Reads (`read_json`, `read_jsonl`): only a regular file, and not a link where the caller says so (a FIFO, a
device, `/dev/zero` behind a link or a loop of links is refused before anything is read, never waited on),
its size checked before reading, nesting depth and NaN/Infinity checked before parsing; every failure is an
`UnreadableFile` (a `BadInput`) naming the file in one line.
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .errors import BadInput, UnreadableFile
from .limits import MAX_JSON_DEPTH, clip, human_bytes


def _read_umask() -> int:
    mask = os.umask(0o022)   # the only way to read it is to set it; read once, at import, before any thread
    os.umask(mask)
    return mask


UMASK = _read_umask()


def audit(path: str | os.PathLike[str]) -> None:
    """With WORKBENCH_WRITE_LOG=FILE set, every file or folder the workbench writes is logged there as
    "<rank> <pid> <path>" (an audit trail: what did a run write, and which process wrote it)."""
    log = os.environ.get("WORKBENCH_WRITE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.environ.get('RANK', '0')} {os.getpid()} {os.fspath(path)}\n")


def real_folder(root: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Path:
    """Create `folder` (inside `root`) where missing, refusing any link or non-folder between `root` and it:
    what is then written into it stays inside `root`. `root` itself is the user's choice and may be a link."""
    root, folder = Path(root), Path(folder)
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        raise BadInput(f"{clip_path(folder)}: outside the run folder {clip_path(root)}") from None
    if ".." in parts:
        raise BadInput(f"{clip_path(folder)}: '..' in a folder inside the run folder")
    here = root
    for part in parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            audit(here)
            os.mkdir(here)
            continue
        if stat.S_ISLNK(mode):
            raise BadInput(f"{clip_path(here)}: a symbolic link inside the run folder; "
                           "the workbench never writes through a link (remove it)")
        if not stat.S_ISDIR(mode):
            raise BadInput(f"{clip_path(here)}: exists and is not a folder")
    return folder


def resolved(path: str | os.PathLike[str]) -> Path:
    """`Path(path).resolve()`, except that a loop of links or an unreadable folder gives the absolute path
    instead of an exception."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def clip_path(path: str | os.PathLike[str]) -> str:
    return clip(os.fspath(path), 200)


def _parent(path: Path, root: str | os.PathLike[str] | None) -> None:
    if root is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        real_folder(root, path.parent)


@contextmanager
def atomic_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yields a temporary path; on success it replaces `path` (a link there is replaced, not followed), on error
    it is removed. With `root`, no folder between `root` and `path` may be a link."""
    path = Path(path)
    audit(path)
    _parent(path, root)
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


def atomic_write_text(path: str | os.PathLike[str], text: str, root: str | os.PathLike[str] | None = None) -> None:
    with atomic_path(path, root) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, root: str | os.PathLike[str] | None = None) -> None:
    with atomic_path(path, root) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_dir(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yields a temporary folder; on success it is renamed to `path` (replacing an old one; a link there is
    removed, never followed). With `root`, no folder between `root` and `path` may be a link."""
    path = Path(path)
    audit(path)
    _parent(path, root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~UMASK)
        if path.is_symlink():
            path.unlink()
        elif path.exists():
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


def append_file(path: str | os.PathLike[str]) -> TextIO:
    """`path` opened for appending text, created where missing; never through a link, never a FIFO or device
    (refused with `BadInput` naming it, without waiting for a reader)."""
    path = Path(path)
    audit(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(path, f"{_kind(mode)}, not a regular file; nothing is written through it")
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UnreadableFile(path, _open_problem(path, exc, "written")) from None
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise UnreadableFile(path, _open_problem(path, exc, "written")) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnreadableFile(path, f"{_kind(os.stat(path).st_mode)}, not a regular file; nothing is written to it")
    return os.fdopen(fd, "a", encoding="utf-8")


# --- bounded reads --------------------------------------------------------------------------------------
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _open_problem(path: Path, exc: OSError, verb: str = "read", follow_links: bool = False) -> str:
    if exc.errno == errno.ELOOP:
        try:
            is_link = not follow_links and stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            is_link = False
        return (f"a symbolic link; it is not followed, nothing is {verb} through it" if is_link
                else "a loop of symbolic links")
    return exc.strerror or type(exc).__name__


def open_regular(path: str | os.PathLike[str], *, follow_links: bool = False) -> BinaryIO:
    """`path` opened for reading in binary; it must be a regular file (and not a link unless `follow_links`). A FIFO,
    a device or a folder is refused from its `stat`, before it is opened; `UnreadableFile` naming it otherwise."""
    path = Path(path)
    try:
        mode = os.stat(path, follow_symlinks=follow_links).st_mode
        if not stat.S_ISREG(mode):
            problem = ("a symbolic link; it is not followed, nothing is read through it" if stat.S_ISLNK(mode)
                       else f"{_kind(mode)}, not a regular file")
            raise UnreadableFile(path, problem)
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
                     | (0 if follow_links else _NOFOLLOW))
    except FileNotFoundError:
        raise UnreadableFile(path, "no such file", missing=True) from None
    except NotADirectoryError:
        raise UnreadableFile(path, "no such file (a part of its path is not a folder)", missing=True) from None
    except OSError as exc:
        raise UnreadableFile(path, _open_problem(path, exc, follow_links=follow_links)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):                   # swapped between the stat and the open
        os.close(fd)
        raise UnreadableFile(path, f"{_kind(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], *, max_bytes: int, follow_links: bool = False) -> bytes:
    """The bytes of `path`, which must be a regular file (`open_regular`) of at most `max_bytes`: the size is
    checked before reading, and reading stops past it (a file that grows meanwhile)."""
    with open_regular(path, follow_links=follow_links) as fh:
        return _read_bounded(fh, Path(path), max_bytes)


def _read_bounded(fh: BinaryIO, path: Path, max_bytes: int) -> bytes:
    fd = fh.fileno()
    try:
        info = os.fstat(fd)
        if info.st_size > max_bytes:
            raise UnreadableFile(path, f"{human_bytes(info.st_size)} ({info.st_size:,} bytes); "
                                       f"at most {max_bytes:,} bytes are read")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise UnreadableFile(path, f"grew beyond {max_bytes:,} bytes while being read")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(path, exc.strerror or type(exc).__name__) from None


def too_deep(data: bytes, max_depth: int) -> bool:
    """Whether lists and objects nest more than `max_depth` levels in a JSON text (brackets in strings do not
    count); a vectorised scan, before the parser could recurse."""
    if data.count(b"[") + data.count(b"{") <= max_depth:        # cannot be deeper: no scan needed
        return False
    import numpy as np
    plain = data.replace(b"\\\\", b"__").replace(b'\\"', b"__")    # escaped backslashes, then escaped quotes
    depth, quoted = 0, 0
    for start in range(0, len(plain), 1 << 22):                  # 4 MB at a time: a few tens of MB of arrays
        a = np.frombuffer(plain, dtype=np.uint8, count=min(1 << 22, len(plain) - start), offset=start)
        inside = np.bitwise_xor.accumulate((a == 0x22).view(np.uint8)) ^ quoted     # after an opening quote
        step = ((a == 0x5B) | (a == 0x7B)).view(np.int8) - ((a == 0x5D) | (a == 0x7D)).view(np.int8)
        step[inside.view(bool)] = 0
        levels = np.cumsum(step, dtype=np.int64) + depth
        if levels.max() > max_depth:
            return True
        depth, quoted = int(levels[-1]), int(inside[-1])
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} does not fit a finite float")
    return value


def parse_json(data: bytes | str, what: str | os.PathLike[str], *, max_depth: int = MAX_JSON_DEPTH,
               allow_nan: bool = False) -> Any:
    """JSON text -> its value; `UnreadableFile` naming `what` when it is not UTF-8, not JSON, nested deeper than
    `max_depth` or (unless `allow_nan`) holds NaN, Infinity or a number beyond a float."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(what, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    if too_deep(raw, max_depth):
        raise UnreadableFile(what, f"not read: lists and objects nested more than {max_depth} levels deep")
    try:
        if allow_nan:
            return json.loads(text)
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise UnreadableFile(what, f"not read: nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UnreadableFile(what, f"not valid JSON ({why})") from None


def read_json(path: str | os.PathLike[str], *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH, allow_nan: bool = False,
              follow_links: bool = False) -> Any:
    """A JSON file, bounded (see `read_regular` and `parse_json`); `UnreadableFile` naming it otherwise."""
    return parse_json(read_regular(path, max_bytes=max_bytes, follow_links=follow_links), path,
                      max_depth=max_depth, allow_nan=allow_nan)


def read_jsonl(path: str | os.PathLike[str], *, max_bytes: int, max_lines: int, max_depth: int = MAX_JSON_DEPTH,
               allow_nan: bool = False) -> list[Any]:
    """The values of a JSON-lines file (never through a link); a line that does not parse (cut short by a kill,
    too deep, NaN) is left out. `UnreadableFile` when the file cannot be read or has more than `max_lines` lines."""
    data = read_regular(path, max_bytes=max_bytes)
    lines = data.count(b"\n") + (not data.endswith(b"\n") and bool(data))
    if lines > max_lines:
        raise UnreadableFile(path, f"{lines:,} lines; at most {max_lines:,} are read")
    values = []
    for line in data.splitlines():
        if line.strip():
            try:
                values.append(parse_json(line, path, max_depth=max_depth, allow_nan=allow_nan))
            except UnreadableFile:
                continue
    return values
