"""Data files are untrusted (issue 21): images are decoded safely, folders are listed within bounds, and data
set files are read without pickles. Each hostile case is refused with exit 2 and one line naming the file;
no payload runs (a fake `gs` first on PATH and os.system payloads leave marker files); nothing hangs (the
timeouts here only guard against a hang, they assert no speed)."""
from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import hostile_inputs as H
import numpy as np
import pytest
import torch
from cli_helpers import ROOT
from hostile_files import Payload, pickled

from workbench.core import limits
from workbench.core.data import ImageFileError, load_data, read_image
from workbench.core.data import files as F
from workbench.core.data.image_folder import FolderScan
from workbench.core.errors import SpecError

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 12 12\n%%EndComments\n0 0 moveto showpage\n%%EOF\n"
IDX = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def fake_gs(folder: Path, marker: Path) -> Path:
    """A folder holding an executable `gs` that creates `marker`: put first on PATH, it shows Ghostscript ran."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gs").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (folder / "gs").chmod(0o755)
    return folder


def big_png(path: Path, side: int) -> Path:
    """A real side x side 8-bit grayscale PNG of zeros, a few KB on disk (it would decode to side**2 bytes)."""
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(bytes(side + 1)) for _ in range(side)) + packer.flush()
    H.png_header_only(path, side, side)
    head = path.read_bytes()[:33]                               # signature + IHDR
    chunk = lambda kind, data: len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    path.write_bytes(head + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def write_idx(path: Path, array: np.ndarray, ndim: int, gz: bool = False) -> Path:
    data = bytes([0, 0, 8, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def mnist_root(root: Path, folder: str = "MNIST", which: tuple[str, ...] = tuple(IDX), gz: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for name in which:
        n = 30 if name.startswith("train") else 10
        shape, ndim = ((n, 28, 28), 3) if "images" in name else ((n,), 1)
        write_idx(root / folder / "raw" / (name + (".gz" if gz else "")), rng.integers(0, 10 if ndim == 1 else 255, shape), ndim, gz)
    return root


def _folder(d: Path, name: str, special: dict | None = None) -> Path:
    """An image folder of three good 12x12 PNGs (a/1, b/0, b/1) and `special` {relative name: callable(path)}."""
    root = H.image_folder(d / name, {"a/1.png": None, "b/0.png": None, "b/1.png": None})
    for rel, make in (special or {}).items():
        make(root / rel)
    return root


def _data(spec: str, needle: str) -> tuple[list[str], str]:
    return ["inspect", "arch:lenet5", "--data", spec], needle


def _images(d: Path, name: str, rel: str, make, needle: str) -> tuple[list[str], str]:
    root = _folder(d, name, {rel: make})
    return _data(f"imagefolder:{root}", f"{root / rel}: {needle}")


def _only_test_files(d: Path, prefix: str, sub: str, names: list[str], missing: str) -> tuple[list[str], str]:
    root = d / f"{prefix}_test_only"
    for name in names:
        (root / sub / name).parent.mkdir(parents=True, exist_ok=True)
        (root / sub / name).write_bytes(b"\0" * 16)
    return _data(f"{prefix}:{root}", f"missing {root / sub / missing}")


def _cifar(d: Path, name: str, make) -> Path:
    import torchvision.datasets as D
    root = d / name / D.CIFAR10.base_folder
    root.mkdir(parents=True)
    for file_name, _ in D.CIFAR10.train_list + D.CIFAR10.test_list + [(D.CIFAR10.meta["filename"], "")]:
        (root / file_name).write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}))
    make(root)
    return root.parent


def _mnist_with(d: Path, name: str, replace: dict) -> Path:
    root = mnist_root(d / name)
    for file_name, data in replace.items():
        (root / "MNIST" / "raw" / file_name).unlink()
        if callable(data):
            data(root / "MNIST" / "raw" / file_name)
        else:
            (root / "MNIST" / "raw" / file_name).write_bytes(data)
    return root


def _processed_payload(d: Path, marker: Path) -> Path:
    root = d / "mnist_processed"
    (root / "MNIST" / "processed").mkdir(parents=True)
    for name in ("training.pt", "test.pt"):
        (root / "MNIST" / "processed" / name).write_bytes(pickled(Payload(str(marker))))
    return root


def _link(target: str):
    return lambda path: path.symlink_to(target)


def _cases(d: Path, marker: Path) -> dict[str, tuple[list[str], str]]:
    raw = lambda root: root / "MNIST" / "raw"
    huge = bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (60000, 100000, 100000))
    cifar_payload = _cifar(d, "cifar_payload", lambda r: (r / "data_batch_1").write_bytes(pickle.dumps(Payload(str(marker)))))
    cifar_fifo = _cifar(d, "cifar_fifo", lambda r: ((r / "test_batch").unlink(), os.mkfifo(r / "test_batch")))
    processed = _processed_payload(d, marker)
    idx_huge, idx_fifo, idx_cut = (_mnist_with(d, "idx_huge", {IDX[0]: huge}), _mnist_with(d, "idx_fifo", {IDX[0]: os.mkfifo}),
                                   _mnist_with(d, "idx_cut", {IDX[2]: bytes([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28, 1])}))
    return {
        "eps_named_png": _images(d, "eps", "a/0.png", lambda p: p.write_bytes(EPS), "not a readable image"),
        "png_9000x9000": _images(d, "bomb", "b/2.png", lambda p: big_png(p, 9000),
                                 f"refused: more than {limits.MAX_IMAGE_PIXELS:,} pixels"),
        "fifo_image": _images(d, "fifo", "a/0.png", os.mkfifo, "a FIFO, not a regular file"),
        "dev_zero_link": _images(d, "zero", "a/0.png", _link("/dev/zero"), "a character device, not a regular file"),
        "image_link_loop": _images(d, "loop", "a/0.png", _link("0.png"), "a symlink loop"),
        "folder_link_loop": _data(f"imagefolder:{_folder(d, 'dirloop', {'a/sub': _link('..')})}",
                                  "a symlink loop (a folder that contains itself)"),
        "mnist_processed_payload": _data(f"mnist:{processed}", f"missing {raw(processed) / IDX[0]}(.gz), "),
        **{f"{prefix}_test_only": _only_test_files(d, prefix, sub, names, missing) for prefix, sub, names, missing in (
            ("mnist", "MNIST/raw", IDX[2:], IDX[0] + "(.gz)"), ("fashionmnist", "FashionMNIST/raw", IDX[2:], IDX[0] + "(.gz)"),
            ("cifar10", "cifar-10-batches-py", ["test_batch", "batches.meta"], "data_batch_1"),
            ("cifar100", "cifar-100-python", ["test", "meta"], "train"), ("svhn", "", ["test_32x32.mat"], "train_32x32.mat"))},
        "idx_header_huge": _data(f"mnist:{idx_huge}", f"{raw(idx_huge) / IDX[0]}: its header declares 60000x100000x100000"),
        "idx_fifo": _data(f"mnist:{idx_fifo}", f"{raw(idx_fifo) / IDX[0]}: a FIFO, not a regular file"),
        "idx_truncated": _data(f"mnist:{idx_cut}", f"{raw(idx_cut) / IDX[2]}: its header declares 10x28x28 values"),
        "cifar_payload": _data(f"cifar10:{cifar_payload}", "do not match their published checksums"),
        "cifar_fifo": _data(f"cifar10:{cifar_fifo}", f"{cifar_fifo / 'cifar-10-batches-py' / 'test_batch'}: a FIFO"),
    }


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Every case through `workbench inspect ... --data SPEC` in one process, with a fake `gs` first on PATH."""
    d = tmp_path_factory.mktemp("data_trust")
    marker = d / "payload-ran"
    cases = _cases(d, marker)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{fake_gs(d / 'bin', marker)}{os.pathsep}{os.environ['PATH']}")
        results = dict(zip(cases, H.run_cli_batch([argv for argv, _ in cases.values()], ROOT)))
    return cases, results, marker


CASE_NAMES = ["eps_named_png", "png_9000x9000", "fifo_image", "dev_zero_link", "image_link_loop", "folder_link_loop",
              "mnist_processed_payload", "mnist_test_only", "fashionmnist_test_only", "cifar10_test_only",
              "cifar100_test_only", "svhn_test_only", "idx_header_huge", "idx_fifo", "idx_truncated", "cifar_payload",
              "cifar_fifo"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CASE_NAMES)
def test_hostile_data_exits_2_with_one_line_and_runs_nothing(cli, case):
    cases, results, marker = cli
    status, stderr = results[case]
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in stderr, f"exit {status}:\n{stderr[-3000:]}"
    assert lines[0].startswith("workbench: error: ") and cases[case][1] in lines[0], lines[0]
    assert not marker.exists(), "a payload ran (or Ghostscript started)"


def test_the_fake_ghostscript_would_have_been_noticed(tmp_path):
    """The control for `eps_named_png`: Pillow left to itself opens the same file as EPS and starts `gs`."""
    marker, image = tmp_path / "gs-ran", tmp_path / "0.png"
    image.write_bytes(EPS)
    env = {**os.environ, "PATH": f"{fake_gs(tmp_path / 'bin', marker)}{os.pathsep}{os.environ['PATH']}"}
    code = f"from PIL import Image\nim = Image.open({str(image)!r})\nprint(im.format)\ntry:\n    im.load()\nexcept Exception:\n    pass"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "EPS" and marker.exists()


def test_a_large_image_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    from PIL import ImageFile
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    path = big_png(tmp_path / "big.png", 9000)
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageFileError) as exc:
        read_image(str(path))
    assert exc.value.message == f"{path}: refused: more than {limits.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)"
    assert decoded == []
    small = read_image(str(big_png(tmp_path / "small.png", 64)))
    assert small.size == (64, 64) and small.mode == "RGB" and decoded == [(64, 64)]
    from PIL import Image
    assert Image.MAX_IMAGE_PIXELS == limits.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("fmt,suffix,ok", [("PNG", ".png", True), ("JPEG", ".jpg", True), ("WEBP", ".webp", True),
                                           ("BMP", ".bmp", True), ("GIF", ".gif", True), ("TIFF", ".tif", True),
                                           ("PPM", ".png", False), ("PDF", ".png", False), ("EPS", ".png", False)])
def test_only_the_allowed_raster_formats_are_opened(tmp_path, fmt, suffix, ok):
    from PIL import Image
    path = tmp_path / f"x{suffix}"
    if fmt == "EPS":
        path.write_bytes(EPS)
    else:
        Image.new("RGB", (10, 6), (200, 30, 30)).save(path, format=fmt)
    if ok:
        image = read_image(str(path))
        assert image.size == (10, 6) and image.mode == "RGB"
        return
    with pytest.raises(ImageFileError, match="not a readable image"):
        read_image(str(path))


@pytest.mark.timeout(60)
def test_the_opened_file_itself_must_be_regular(tmp_path, monkeypatch):
    """Even when the path looked regular when checked (a swap just before the open), a FIFO is refused."""
    os.mkfifo(tmp_path / "pipe.png")
    monkeypatch.setattr(F, "file_problem", lambda *a, **k: None)
    with pytest.raises(F.FileProblem, match="a FIFO, not a regular file"):
        F.open_regular(tmp_path / "pipe.png", 1 << 20)
    with pytest.raises(ImageFileError, match=r"pipe\.png: a FIFO, not a regular file"):
        read_image(str(tmp_path / "pipe.png"))


def _scan_refused(root: Path) -> tuple[FolderScan, str]:
    scan = FolderScan("imagefolder:x", root)
    with pytest.raises(SpecError) as exc:
        scan.scan()
    return scan, exc.value.message


def test_class_folders_are_counted_while_listing(tmp_path, monkeypatch):
    for i in range(40):
        (tmp_path / f"c{i}").mkdir()
    monkeypatch.setattr(limits, "MAX_CLASSES", 5)
    scan, message = _scan_refused(tmp_path)
    assert message == f"imagefolder:x: {tmp_path}: more than 5 class folders (the limit)"
    assert scan.entries == 6                        # stopped at the first folder past the bound


def test_images_and_entries_are_counted_while_listing(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    for i in range(50):
        (tmp_path / "a" / f"{i}.png").write_bytes(b"")       # never opened: the listing stops first
        (tmp_path / "a" / f"{i}.txt").write_bytes(b"")
    monkeypatch.setattr(limits, "MAX_IMAGE_FILES", 10)
    scan, message = _scan_refused(tmp_path)
    assert message.endswith(": more than 10 images (the limit)") and scan.images == 11 and scan.entries < 101
    monkeypatch.setattr(limits, "MAX_IMAGE_FILES", 1000)
    monkeypatch.setattr(limits, "MAX_FOLDER_ENTRIES", 20)
    scan, message = _scan_refused(tmp_path)
    assert message.endswith("more than 20 files and folders (the limit of one image folder)") and scan.entries == 21


def test_folders_nested_too_deep_are_refused(tmp_path, monkeypatch):
    deep = tmp_path / "a" / "1" / "2" / "3" / "4"
    deep.mkdir(parents=True)
    monkeypatch.setattr(limits, "MAX_FOLDER_DEPTH", 2)
    _, message = _scan_refused(tmp_path)
    assert message == f"imagefolder:x: {tmp_path / 'a' / '1' / '2' / '3'}: folders nested more than 2 deep (the limit)"


@pytest.mark.timeout(120)
def test_links_to_images_are_read_and_other_special_files_are_left_alone(tmp_path):
    from PIL import Image
    root = _folder(tmp_path, "imgs")
    Image.new("RGB", (12, 12), (0, 90, 0)).save(tmp_path / "elsewhere.png")
    (root / "a" / "0.png").symlink_to(tmp_path / "elsewhere.png")
    os.mkfifo(root / "a" / "notes")                               # not an image name: never opened
    (root / "b" / "gone.txt").symlink_to(tmp_path / "missing")
    data = load_data({"spec": f"imagefolder:{root}:8", "workers": 0})
    assert data.class_names == ["a", "b"] and data.splits["test"] + data.splits["train"] + data.splits["val"] == 4
    x = torch.cat([xb for xb, _ in data.loader("train", 8)] + [xb for xb, _ in data.test] + [xb for xb, _ in data.val])
    assert x.shape == (4, 3, 8, 8)


def test_mnist_reads_plain_and_gzipped_idx_files_alike(tmp_path):
    plain = load_data(f"mnist:{mnist_root(tmp_path / 'plain')}")
    zipped = load_data(f"mnist:{mnist_root(tmp_path / 'gz', gz=True)}")
    assert plain.splits == zipped.splits == {"train": 27, "val": 3, "test": 10}
    (xa, ya), (xb, yb) = next(iter(plain.test)), next(iter(zipped.test))
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and plain.class_names[0] == "0 - zero"


@pytest.mark.parametrize("tail,needle", [(b"extra", "the data holds more"), (b"", None)])
def test_gzipped_idx_with_trailing_bytes_is_refused(tmp_path, tail, needle):
    path = write_idx(tmp_path / "x.gz", np.arange(24).reshape(2, 3, 4), 3)
    path.write_bytes(gzip.compress(path.read_bytes() + tail))
    if needle is None:
        assert F.read_idx(path, 3).tolist() == np.arange(24).reshape(2, 3, 4).tolist()
        return
    with pytest.raises(F.FileProblem, match=needle):
        F.read_idx(path, 3)


def test_idx_files_of_the_wrong_kind_are_refused(tmp_path):
    path = write_idx(tmp_path / "labels", np.arange(5), 1)
    with pytest.raises(F.FileProblem, match="not an IDX file of 3-dimensional unsigned bytes"):
        F.read_idx(path, 3)
    root = _mnist_with(tmp_path, "bad_labels", {IDX[1]: write_idx(tmp_path / "l", np.full(30, 12), 1).read_bytes()})
    with pytest.raises(SpecError, match="labels must be 0 to 9, found 12"):
        load_data(f"mnist:{root}")
