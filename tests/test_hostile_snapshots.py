"""Corrupted and tampered snapshot folders: each is refused by `workbench inspect SNAPSHOT` with exit 2 and one line
naming the file. snapshot.json records a digest of every weights file (the tensor digest of the safetensors files,
as in their header; the bytes of model.pt); snapshots older than that still load."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import hostile_inputs as H
import pytest
import torch
from cli_helpers import ROOT
from quant_helpers import make_session, run_stage
from safetensors.torch import load_file, save_file

from workbench.core.snapshots import load_snapshot, save_snapshot


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory, digits) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("snaps")
    (d / "run" / "snapshots").mkdir(parents=True)
    session = make_session(digits, "sample:digits_mlp", d / "run")
    run_stage(session, "prune", 0, sparsity=0.5)
    pruned = save_snapshot(session, 1, "prune", None)
    run_stage(session, "quantize", 1, method="int8_dynamic")
    return {"pruned": pruned, "int8": save_snapshot(session, 2, "quantize", None), "dir": d}


def _copy(snapshots, which: str, name: str) -> Path:
    return Path(shutil.copytree(snapshots[which], snapshots["dir"] / name))


def _flip(path: Path, start: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_meta(folder: Path, change) -> Path:
    meta = json.loads((folder / "snapshot.json").read_text())
    change(meta)
    (folder / "snapshot.json").write_text(json.dumps(meta))
    return folder


def _mask_state(folder: Path, shape: tuple[int, ...], name: str = "fc1.weight") -> Path:
    state = load_file(str(folder / "state.safetensors"))
    state.pop("mask/fc1.weight")
    state[f"mask/{name}"] = torch.ones(shape, dtype=torch.uint8)
    save_file(state, str(folder / "state.safetensors"))
    return folder


def _half_flipped(s, name):
    f = _copy(s, "pruned", name)
    size = (f / "model.safetensors").stat().st_size
    _flip(f / "model.safetensors", size // 2, size // 2)            # half the bytes: all of them weights
    return f, "model.safetensors"


def _reweighted(s, name):
    """Other weights under no header digest: only the digest in snapshot.json tells."""
    f = _copy(s, "pruned", name)
    sd = load_file(str(f / "model.safetensors"))
    sd["fc1.weight"] = sd["fc1.weight"] * 2
    save_file(sd, str(f / "model.safetensors"), metadata={"workbench_record": json.dumps(
        json.loads((f / "snapshot.json").read_text())["record"])})
    return f, "snapshot.json"


def _pt_flipped(s, name):
    f = _copy(s, "int8", name)
    _flip(f / "model.pt", (f / "model.pt").stat().st_size // 2, 1)
    return f, "model.pt"


CASES = {
    "safetensors_half_flipped": _half_flipped,
    "safetensors_reweighted": _reweighted,
    "model_pt_flipped": _pt_flipped,
    "nan_in_meta": lambda s, n: (_edit_meta(_copy(s, "pruned", n), lambda m: m["metrics"].update(top1=float("nan"))),
                                 "non-finite number (NaN)"),
    "huge_float_in_meta": lambda s, n: (_copy(s, "pruned", n), "non-finite number (1e400)"),
    "wrong_shape_mask": lambda s, n: (_mask_state(_edit_meta(_copy(s, "pruned", n), lambda m: m.pop("sha256")), (3, 3)),
                                      "mask/fc1.weight has shape [3, 3]"),
    "mask_of_no_parameter": lambda s, n: (_mask_state(_edit_meta(_copy(s, "pruned", n), lambda m: m.pop("sha256")),
                                                      (4,), "nothing.weight"), "mask/nothing.weight names no parameter"),
    "tampered_mask": lambda s, n: (_mask_state(_copy(s, "pruned", n), (300, 64)), "state.safetensors"),
    "state_removed": lambda s, n: ((lambda f: (f / "state.safetensors").unlink() or f)(_copy(s, "pruned", n)),
                                   "state.safetensors: recorded in snapshot.json but missing"),
    "state_planted": lambda s, n: ((lambda f: shutil.copy(s["pruned"] / "state.safetensors", f) and f)(_copy(s, "int8", n)),
                                   "records no digest for it"),
}


def test_tampered_snapshots_exit_2_naming_the_file(snapshots):
    built = {name: make(snapshots, name) for name, make in CASES.items()}
    meta = built["huge_float_in_meta"][0] / "snapshot.json"
    meta.write_text(meta.read_text().replace('"index": 1', '"index": 1e400'))
    results = H.run_cli_batch([["inspect", str(folder)] for folder, _ in built.values()], ROOT)
    for (name, (folder, needle)), (status, stderr) in zip(built.items(), results):
        lines = stderr.strip().splitlines()
        assert status == 2 and len(lines) == 1 and "Traceback" not in stderr, f"{name}: exit {status}\n{stderr[-2000:]}"
        assert str(folder) in lines[0] and needle in lines[0], f"{name}: {lines[0]}"


def test_intact_and_older_snapshots_load(snapshots, digits):
    x = digits.example_input(4)
    for which, weights in (("pruned", "model.safetensors"), ("int8", "model.pt")):
        meta = json.loads((snapshots[which] / "snapshot.json").read_text())
        assert set(meta["sha256"]) == {weights} | ({"state.safetensors"} if which == "pruned" else set())
        assert all(len(v) == 64 for v in meta["sha256"].values())
        loaded = load_snapshot(snapshots[which])
        old = load_snapshot(_edit_meta(_copy(snapshots, which, f"old_{which}"), lambda m: m.pop("sha256")))
        assert torch.equal(loaded.module.eval()(x), old.module.eval()(x))      # no digest recorded: loads unchecked
    masks = load_snapshot(snapshots["pruned"]).state["masks"]
    assert set(masks) == {"fc1.weight", "fc2.weight", "fc3.weight"} and masks["fc1.weight"].shape == (300, 64)
