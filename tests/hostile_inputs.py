"""Crafted hostile inputs (tiny files naming huge models, broken records, YAML bombs, broken images) for
tests/test_hostile_inputs.py. Nothing here builds a real large model. Not imported from conftest."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import torch
from peak_rss import PEAK_RSS_SOURCE
from safetensors.torch import save_file

from workbench.core.packed.container import write_container

GOOD_RECORD = {"base": "arch:mlp:hidden=300-100", "input_shape": [1, 8, 8], "num_classes": 10, "transforms": []}


def safetensors_with(path: Path, record, tensors: dict | None = None, raw_record: str | None = None) -> Path:
    """A .safetensors file whose header carries `record` (or the text `raw_record`) as workbench_record."""
    text = raw_record if raw_record is not None else json.dumps(record)
    save_file(tensors if tensors is not None else {"w": torch.zeros(1)}, str(path), metadata={"workbench_record": text})
    return path


def packed_with(path: Path, record, tensors: list | None = None) -> Path:
    """A .packed container whose header holds `record` and the tensor entries `tensors` (empty streams)."""
    metas = tensors if tensors is not None else [{"n": "fc1.weight", "s": [300, 64], "d": "float32", "z": [0] * 6}]
    write_container(path, {"record": record, "tensors": metas}, [])
    return path


def snapshot_with(folder: Path, meta_text: str, weights: dict | None = None) -> Path:
    """A snapshot folder: snapshot.json with `meta_text` and a model.safetensors with `weights`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "snapshot.json").write_text(meta_text)
    save_file(weights if weights is not None else {"w": torch.zeros(1)}, str(folder / "model.safetensors"))
    return folder


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` pixels and holds none (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return path


def image_folder(root: Path, images: dict[str, bytes | None]) -> Path:
    """ROOT/<class>/<name>: `images` maps 'class/name.png' to file bytes (None: a valid 12x12 PNG)."""
    from PIL import Image
    for rel, data in images.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            Image.new("RGB", (12, 12), (200, 30, 30)).save(path)
        else:
            path.write_bytes(data)
    return root


def billion_laughs(levels: int = 9, width: int = 10) -> str:
    """A recipe whose description expands to width**levels strings through YAML aliases."""
    items = ['  - &a0 "lol"'] + [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "name: bomb\nstages: []\ndescription:\n" + "\n".join(items) + "\n"


_BATCH = r"""
import contextlib, io, json, sys, traceback, warnings
warnings.simplefilter("always")          # a warning shown once per process must show in every case here
from workbench.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except BaseException:
            traceback.print_exc()
            rc = "uncaught"
    results.append([rc, err.getvalue()])
print(json.dumps(results))
"""


def run_cli_batch(cases: list[list[str]], cwd: Path) -> list[tuple[object, str]]:
    """[(exit status, stderr)] of `workbench.cli.main(argv)` for each argv, all in one fresh process
    (one interpreter start for dozens of inputs; `run_cli` runs `python -m workbench` once per call)."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", _BATCH, json.dumps(cases)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]


_PEAK = PEAK_RSS_SOURCE + r"""
import contextlib, io, json, sys
import safetensors.torch, torch, torchvision, yaml
from workbench.cli import main
from workbench.core import models, specs
models.torchvision_names()
before = peak_rss_bytes()
codes = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        codes.append(main(argv))
after = peak_rss_bytes()
print(json.dumps({"codes": codes, "growth_mb": (after - before) / 2**20}))
"""


def peak_growth(cases: list[list[str]], cwd: Path) -> dict:
    """Exit statuses and the growth of peak RSS (MB) while `main(argv)` handles each case, after imports."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", _PEAK, json.dumps(cases)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
