"""Hostile model files and snapshot folders for tests/hostile_corpus.py: payload pickles under every suffix,
`.pt2` and TorchScript programs (payloads, a graph that creates a file, decoys, flipped bytes), damaged
safetensors / packed files, files that are FIFOs, /dev/zero links, loops or folders, and tampered snapshots.
A payload only creates its marker file."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
from pathlib import Path

import torch
from hostile_files import Payload, legacy_pt2, pickled, pt2_variants, zip_bomb
from test_pt2_trust import decoy_root, file_creating_pt2

DIGITS = "model: sample:digits_mlp\ndata: sample:digits\n"
DEEP_JSON = "[" * 100_000 + "]" * 100_000


# --- shared good inputs ------------------------------------------------------------------------------------
def good_inputs(d: Path) -> dict[str, Path]:
    """A real run folder (snapshot 0 and an evaluated snapshot), and the sample MLP in every format."""
    from workbench.cli import main
    from workbench.core.export import ExportSource, export_model
    from workbench.core.specs import load_model
    if not (d / "run" / "report.json").exists():
        recipe = d / "train.yaml"
        recipe.write_text(DIGITS + "stages:\n  - {kind: train, epochs: 1}\n")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["run", str(recipe), "--out", str(d / "run"), "--quiet"]) == 0
    source = ExportSource.from_loaded(load_model("sample:digits_mlp"))
    for fmt, suffix in (("pt2", ".pt2"), ("torchscript", ".ts"), ("safetensors", ".safetensors"), ("packed", ".packed")):
        if not (d / f"m{suffix}").exists():
            assert export_model(source, fmt, d / f"m{suffix}").verified
    snaps = sorted((d / "run" / "snapshots").iterdir())
    return {"run": d / "run", "snapshot": snaps[-1], **{s: d / f"m.{s}" for s in ("pt2", "ts", "safetensors", "packed")}}


def _flip(path: Path, start: int, count: int) -> Path:
    data = bytearray(path.read_bytes())
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def _torchscript_from_file(path: Path, created: Path) -> Path:
    """TorchScript whose forward calls torch.from_file(created, shared=True): running it creates `created`."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)
            self.created = str(created)

        def forward(self, x):
            return self.fc(x.flatten(1)) + torch.from_file(self.created, True, 16, dtype=torch.uint8).sum() * 0
    torch.jit.script(Net()).save(str(path))
    return path


def _special(kind: str):
    """A maker of a file that is not a regular file: a FIFO, a /dev/zero link, a loop of links, a folder."""
    return {"fifo": os.mkfifo, "devzero": lambda p: p.symlink_to("/dev/zero"), "loop": lambda p: p.symlink_to(p.name),
            "folder": lambda p: p.mkdir()}[kind]


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:             # over a bound without writing it
        fh.truncate(size)
    return path


def _snapshot(g: dict, d: Path, change) -> Path:
    folder = _copy(g["snapshot"], d / "snap")
    change(folder)
    return folder


def _meta(folder: Path, edit) -> None:
    meta = json.loads((folder / "snapshot.json").read_text())
    edit(meta)
    (folder / "snapshot.json").write_text(json.dumps(meta, allow_nan=True))


def _replace(name: str, make):
    def change(folder: Path) -> None:
        (folder / name).unlink()
        make(folder / name)
    return change


def model_files(g: dict, outside: Path) -> dict:
    """variant -> (maker(folder, marker) -> path, fast). Every one must be refused without --trust."""
    st, pk = g["safetensors"], g["packed"]
    pt2 = lambda variant: lambda d, m: pt2_variants(g["pt2"], d, str(m))[variant]
    sized = lambda src, how: lambda d, m: how(_copy(src, d / src.name))
    return {
        "pickle_payload_pt": (lambda d, m: _write(d / "m.pt", pickled({"w": torch.zeros(2), "x": Payload(str(m))})), True),
        "pickled_object_pth": (lambda d, m: _write(d / "m.pth", pickled(Payload(str(m)))), True),
        "pickle_named_safetensors": (lambda d, m: _write(d / "m.safetensors", pickled(Payload(str(m)))), True),
        "pickle_named_packed": (lambda d, m: _write(d / "m.packed", pickled(Payload(str(m)))), True),
        "pickle_named_pt2": (lambda d, m: _write(d / "m.pt2", pickled(Payload(str(m)))), True),
        **{f"pt2_{v}": (pt2(v), True) for v in ("sample_inputs", "pickled_weight", "opaque_constant", "custom_constant",
                                                  "aotinductor")},
        "pt2_legacy_layout": (lambda d, m: legacy_pt2(d, str(m)), True),
        "pt2_clean_untrusted": (lambda d, m: _copy(g["pt2"], d / "m.pt2"), True),
        "pt2_graph_creates_file": (lambda d, m: file_creating_pt2(d / "m.pt2", m), False),
        "pt2_decoy_root": (lambda d, m: decoy_root(pt2("pickled_weight")(d, m), d / "decoy.pt2"), True),
        "pt2_flipped": (sized(g["pt2"], lambda p: _flip(p, p.stat().st_size // 2, 64)), True),
        "torchscript_untrusted": (lambda d, m: _copy(g["ts"], d / "m.ts"), True),
        "torchscript_named_pt": (lambda d, m: _copy(g["ts"], d / "m.pt"), True),
        "torchscript_creates_file": (lambda d, m: _torchscript_from_file(d / "m.ts", m), False),
        "safetensors_truncated": (sized(st, lambda p: _write(p, p.read_bytes()[: p.stat().st_size // 2])), True),
        "safetensors_half_flipped": (sized(st, lambda p: _flip(p, p.stat().st_size // 2, p.stat().st_size)), True),
        "safetensors_header_2_62": (lambda d, m: _write(d / "m.safetensors", struct.pack("<Q", 2**62) + b"{}"), True),
        "safetensors_header_not_json": (lambda d, m: _write(d / "m.safetensors", struct.pack("<Q", 6) + b"{nope!"), True),
        "safetensors_empty": (lambda d, m: _write(d / "m.safetensors", b""), True),
        "packed_truncated": (sized(pk, lambda p: _write(p, p.read_bytes()[: p.stat().st_size // 2])), True),
        "packed_flipped": (sized(pk, lambda p: _flip(p, p.stat().st_size // 2, 16)), True),
        "random_bytes_pt": (lambda d, m: _write(d / "m.pt", os.urandom(4096)), True),
        "empty_pt": (lambda d, m: _write(d / "m.pt", b""), True),
        "zip_bomb_pt": (lambda d, m: zip_bomb(d / "m.pt", 2**28), False),
        **{f"{kind}_named_pt": ((lambda d, m, kind=kind: _made(d / "m.pt", _special(kind))), True)
           for kind in ("fifo", "devzero", "loop", "folder")},
        **{f"snapshot_meta_{kind}": ((lambda d, m, kind=kind: _snapshot(g, d, _replace("snapshot.json", _special(kind)))), True)
           for kind in ("fifo", "devzero", "loop", "folder")},
        **{f"snapshot_weights_{kind}": ((lambda d, m, kind=kind: _snapshot(g, d, _replace("model.safetensors", _special(kind)))), True)
           for kind in ("fifo", "devzero")},
        "snapshot_meta_deep": (lambda d, m: _snapshot(g, d, lambda f: (f / "snapshot.json").write_text(DEEP_JSON)), True),
        "snapshot_meta_huge": (lambda d, m: _snapshot(g, d, lambda f: _sparse(f / "snapshot.json", 65 << 20)), True),
        "snapshot_meta_nan": (lambda d, m: _snapshot(g, d, lambda f: _meta(f, lambda x: x.update(accuracy=float("nan")))), True),
        "snapshot_meta_outside_link": (lambda d, m: _snapshot(g, d, lambda f: _link_out(f / "snapshot.json", outside)), True),
        "snapshot_weights_half_flipped": (lambda d, m: _snapshot(g, d, lambda f: _flip(
            f / "model.safetensors", (f / "model.safetensors").stat().st_size // 2, 1 << 20)), True),
        "snapshot_model_pt_payload": (lambda d, m: _snapshot(g, d, lambda f: (
            (f / "model.safetensors").unlink(), _write(f / "model.pt", pickled({"x": Payload(str(m))})))), True),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _made(path: Path, make) -> Path:
    make(path)
    return path


def _link_out(path: Path, outside: Path) -> Path:
    """`path` replaced by a link to a copy of itself outside (the run's own file, read through a link)."""
    target = outside / f"linked-{abs(hash(str(path)))}"
    shutil.copyfile(path, target)
    path.unlink()
    path.symlink_to(target)
    return path


