"""A `.pt2` (torch.export archive) is a program: it loads only with trust, wherever a model is accepted.

Its graph can call any operator (here `aten.from_file(..., shared=True)`, which creates a file when the graph
runs) and its parts can unpickle objects, so no scan decides that one is safe: without `--trust` every `.pt2`,
even a clean one the workbench wrote itself, is refused with exit 2 and one line. The archives the workbench
writes carry a sha256 in the run's report.json, checked whenever it opens them again (with trust or without).
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import hostile_inputs as H
import pytest
import torch
from cli_helpers import ROOT, run_cli
from hostile_files import pt2_variants, rewrite_zip

from workbench.core.errors import CheckpointError
from workbench.core.export import ExportSource, export_model
from workbench.core.specs import load_model

RECIPE = "model: {model}\ndata: sample:digits\nstages:\n  - kind: {kind}\n{extra}"


def file_creating_pt2(path: Path, created: Path) -> Path:
    """A .pt2 whose graph calls `aten.from_file(created, shared=True)`: running it creates `created`. torch.export
    cannot trace from_file, so the node is swapped in after tracing, as an attacker editing a graph would."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) + torch.zeros(16, dtype=torch.uint8).sum() * 0

    batch = {0: torch.export.Dim("batch")}
    program = torch.export.export(Net().eval(), (torch.randn(2, 1, 8, 8),), dynamic_shapes=(batch,))
    node = next(n for n in program.graph.nodes if n.target == torch.ops.aten.zeros.default)
    node.target, node.args = torch.ops.aten.from_file.default, (str(created),)
    node.kwargs = {"shared": True, "size": 16, "dtype": torch.uint8}
    program.graph_module.recompile()
    torch.export.save(program, str(path))
    return path


def decoy_root(src: Path, dst: Path) -> Path:
    """A copy of `src` with a second, clean-looking archive root ("decoy/") among its entries: a scanner that
    trusts the first root it finds looks at the decoy while torch loads the real one."""
    with zipfile.ZipFile(src) as zf:
        model_json = zf.read("archive/models/model.json")
    return rewrite_zip(src, dst, {}, {"decoy/archive_format": b"pt2", "decoy/models/model.json": model_json})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pt2")
    assert export_model(ExportSource.from_loaded(load_model("sample:digits_mlp")), "pt2", d / "clean.pt2").verified
    marker = d / "ran"
    weight = pt2_variants(d / "clean.pt2", d, str(marker))["pickled_weight"]
    return {"clean": d / "clean.pt2", "creating": file_creating_pt2(d / "creating.pt2", d / "created.bin"),
            "created": d / "created.bin", "decoy": decoy_root(weight, d / "decoy.pt2"), "marker": marker, "dir": d}


def _recipe(d: Path, name: str, model: str, kind: str, extra: str = "") -> str:
    path = d / f"{name}.yaml"
    path.write_text(RECIPE.format(model=model, kind=kind, extra=extra))
    return str(path)


def assert_refused(status, stderr: str, *words: str) -> None:
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in stderr, f"exit {status}:\n{stderr[-3000:]}"
    for word in ("torch.export archive is a program", "--trust", "safetensors", *words):
        assert word in lines[0], lines[0]


def test_every_pt2_is_refused_without_trust_everywhere(files):
    d, clean, creating = files["dir"], str(files["clean"]), str(files["creating"])
    distill = "    epochs: 1\n    teacher: {t}\n    student: {s}\n"
    cases = {
        "inspect": (["inspect", clean], clean),
        "export": (["export", clean, "--format", "onnx", "--out", str(d / "m.onnx")], clean),
        "run_model": (["run", _recipe(d, "train", "sample:digits_mlp", "train", "    epochs: 1\n"),
                       "--model", creating, "--out", str(d / "run_model")], creating),
        "recipe_model": (["run", _recipe(d, "model", creating, "train", "    epochs: 1\n"),
                          "--out", str(d / "recipe_model")], creating),
        "teacher": (["run", _recipe(d, "teacher", "sample:digits_mlp", "distill", distill.format(t=creating, s="current")),
                     "--out", str(d / "teacher")], "stages[0].teacher"),
        "student": (["run", _recipe(d, "student", "sample:digits_mlp", "distill",
                                    distill.format(t="sample:digits_mlp", s=creating)), "--out", str(d / "student")],
                    "stages[0].student"),
        "inspect_creating": (["inspect", creating, "--data", "sample:digits"], creating),
        "decoy": (["inspect", str(files["decoy"])], str(files["decoy"])),
    }
    results = dict(zip(cases, H.run_cli_batch([argv for argv, _ in cases.values()], ROOT)))
    for name, (status, stderr) in results.items():
        assert_refused(status, stderr, cases[name][1])
    assert "the scan also found: its weights" in results["decoy"][1] or "not the usual one" in results["decoy"][1]
    assert not files["created"].exists() and not files["marker"].exists()     # nothing ran
    assert not any((d / run).exists() for run in ("run_model", "recipe_model", "teacher", "student"))
    assert not (d / "m.onnx").exists()
    with pytest.raises(CheckpointError, match="torch.export archive is a program"):
        load_model(clean)


def test_trust_loads_them_and_the_graph_really_runs(files):
    loaded = load_model(str(files["clean"]), trust=True)
    x = torch.randn(3, 1, 8, 8)
    assert loaded.input_shape == (1, 8, 8)
    assert torch.allclose(loaded.module(x), load_model("sample:digits_mlp").module.eval()(x), atol=1e-5)
    proc = run_cli("inspect", str(files["creating"]), "--trust", "--data", "sample:digits", "--json")
    assert proc.returncode == 0, proc.stderr
    assert files["created"].exists()           # the payload is real: trusted, the graph created its file


def test_exports_carry_a_digest_checked_when_reopened(tmp_path):
    proc = run_cli("run", _recipe(tmp_path, "export", "sample:digits_mlp", "export", "    formats: [pt2, torchscript]\n"),
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    exports = {e["format"]: e for e in json.loads((run / "report.json").read_text())["exports"]}
    for entry in exports.values():
        data = (run / entry["path"]).read_bytes()
        assert entry["verified"] and entry["breakdown"]["sha256"] == hashlib.sha256(data).hexdigest()
    pt2, ts = run / exports["pt2"]["path"], run / exports["torchscript"]["path"]
    assert load_model(str(pt2), trust=True).input_shape == (1, 8, 8)       # intact: they open (trusted)
    assert load_model(str(ts), trust=True).num_classes == 10
    for path in (pt2, ts):            # replaced by another valid archive (CRCs fine, weights zeroed)
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if "/data/" in n and zf.getinfo(n).file_size > 1000)
            size = zf.getinfo(name).file_size
        path.write_bytes(rewrite_zip(path, tmp_path / path.name, {name: bytes(size)}).read_bytes())
    for path in (pt2, ts):
        for trust in (False, True):
            with pytest.raises(CheckpointError, match="do not match the sha256 recorded for it in .*report.json"):
                load_model(str(path), trust=trust)
    proc = run_cli("inspect", str(pt2), "--trust")
    assert proc.returncode == 2 and str(pt2) in proc.stderr and "sha256" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
