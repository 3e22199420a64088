"""A data set's files, read safely: regular files only, sizes checked before reading, no pickles.

A path a data set names may be a FIFO (reading blocks forever), a device (`/dev/zero` never ends), a
symlink loop (never resolves) or a file far larger than it should be. `file_problem` says why a path
cannot be read without opening it; `open_regular` opens without blocking and checks the opened file
itself, so a file swapped for a FIFO between the check and the open is still refused.

MNIST and Fashion-MNIST are read from their raw IDX files (`read_idx`), never from torchvision's
`processed/*.pt`, which are pickles. The IDX header's sizes are checked against the file and the bounds
before anything is allocated.
"""
from __future__ import annotations

import errno
import gzip
import math
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import limits
from ..errors import SpecError


class FileProblem(ValueError):
    """A path that is not a readable regular file; the message says why (without the path)."""


def describe(mode: int) -> str:
    """What a file of this st_mode is, for a message."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((text for test, text in kinds if test(mode)), "a special file")


def os_problem(exc: OSError, missing: str = "no such file") -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop (the link never resolves)"
    if exc.errno == errno.ENOENT:
        return missing
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    return f"cannot be read ({exc.strerror or type(exc).__name__})"


def file_problem(path: str | Path, max_bytes: int | None = None) -> str | None:
    """Why `path` (links followed) cannot be read as a data file; None for a regular file within `max_bytes`."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:          # ValueError: a NUL byte in the path
        return os_problem(exc) if isinstance(exc, OSError) else "not a valid path"
    return mode_problem(st, max_bytes)


def mode_problem(st: os.stat_result, max_bytes: int | None) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return f"{describe(st.st_mode)}, not a regular file"
    if max_bytes is not None and st.st_size > max_bytes:
        return f"{st.st_size:,} bytes, more than the {max_bytes:,} a file may hold here"
    return None


def open_regular(path: str | Path, max_bytes: int) -> BinaryIO:
    """`path` opened for reading in binary mode; FileProblem unless it is a regular file of at most `max_bytes`
    (checked before the open, and again on the opened file: opening a FIFO without O_NONBLOCK would block)."""
    problem = file_problem(path, max_bytes)
    if problem:
        raise FileProblem(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileProblem(os_problem(exc)) from None
    try:
        problem = mode_problem(os.fstat(fd), max_bytes)
        if problem:
            raise FileProblem(problem)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# --- MNIST-style IDX files -------------------------------------------------------------------------------
IDX_UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions (plain or gzipped); FileProblem naming what is wrong.
    The sizes in the header are checked against the bounds (and the file's size) before the data is read."""
    try:
        with open_regular(path, limits.MAX_DATASET_FILE_BYTES) as raw:
            fh = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
            head = fh.read(4 + 4 * ndim)
            if len(head) < 4 + 4 * ndim or head[:2] != b"\0\0" or head[2] != IDX_UBYTE or head[3] != ndim:
                raise FileProblem(f"not an IDX file of {ndim}-dimensional unsigned bytes "
                                  f"(it starts with {head[:4].hex() or 'nothing'})")
            dims = struct.unpack(f">{ndim}I", head[4:])
            need = math.prod(dims)
            if need > limits.MAX_IDX_BYTES:
                raise FileProblem(f"its header declares {'x'.join(map(str, dims))} values, more than the "
                                  f"{limits.MAX_IDX_BYTES:,} an IDX file may hold")
            if fh is raw and os.fstat(raw.fileno()).st_size != len(head) + need:
                raise FileProblem(f"its header declares {'x'.join(map(str, dims))} values but the file holds "
                                  f"{os.fstat(raw.fileno()).st_size - len(head):,} bytes after it (truncated?)")
            data = fh.read(need)
            if len(data) != need or fh.read(1):
                raise FileProblem(f"its header declares {'x'.join(map(str, dims))} values but the data holds "
                                  f"{'fewer' if len(data) != need else 'more'} (truncated or corrupt?)")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FileProblem(f"corrupt gzip data ({str(exc)[:80]})") from None
    except OSError as exc:
        raise FileProblem(os_problem(exc)) from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def required(spec: str, folder: Path, names: list[str], layout: str, gz: bool = False) -> dict[str, Path]:
    """{name: path} of the files a data set needs in `folder` (`name` or, with `gz`, `name.gz`), each a regular
    file within the bounds; SpecError naming the missing files and the layout otherwise."""
    found, missing = {}, []
    for name in names:
        candidates = [folder / name, *([folder / f"{name}.gz"] if gz else [])]
        path = next((p for p in candidates if os.path.lexists(p)), None)
        if path is None:
            missing.append(str(folder / name) + ("(.gz)" if gz else ""))
            continue
        problem = file_problem(path, limits.MAX_DATASET_FILE_BYTES)
        if problem:
            raise SpecError(f"{spec}: {path}: {problem}")
        found[name] = path
    if missing:
        raise SpecError(f"{spec}: missing {', '.join(missing)} ({layout})")
    return found


def mnist_arrays(spec: str, root: Path, folder_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) of MNIST / Fashion-MNIST from the raw IDX files in
    ROOT/<folder_name>/raw, the layout torchvision downloads; its `processed/*.pt` pickles are never read."""
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    layout = (f"the layout is ROOT/{folder_name}/raw/ holding {', '.join(names)}, each plain or .gz, as torchvision "
              "downloads them; processed/*.pt files are never read")
    paths = required(spec, root / folder_name / "raw", names, layout, gz=True)
    arrays = []
    for name, ndim in zip(names, (3, 1, 3, 1)):
        try:
            arrays.append(read_idx(paths[name], ndim))
        except FileProblem as exc:
            raise SpecError(f"{spec}: {paths[name]}: {exc}") from None
    for i in (0, 2):
        images, labels, where = arrays[i], arrays[i + 1], paths[names[i]]
        if len(images) != len(labels) or len(images) == 0:
            raise SpecError(f"{spec}: {where}: {len(images):,} images but {len(labels):,} labels in {paths[names[i + 1]]}")
        problem = limits.shape_problem((1, int(images.shape[1]), int(images.shape[2])))
        if problem or images.shape[1:] != arrays[0].shape[1:]:
            raise SpecError(f"{spec}: {where}: {problem or 'its images are not the size of the training images'}")
        if labels.max() > 9:
            raise SpecError(f"{spec}: {paths[names[i + 1]]}: labels must be 0 to 9, found {int(labels.max())}")
    return arrays[0], arrays[1], arrays[2], arrays[3]
