"""Hostile model files: nothing runs without trust, each is refused with exit 2 and one line (every .pt2 needs
trust: tests/test_pt2_trust.py)."""
from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import run_cli
from hostile_files import Payload, legacy_pt2, pickled, pt2_variants, zip_bomb

from workbench.core.errors import CheckpointError
from workbench.core.export import ExportSource, export_model
from workbench.core.specs import load_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    loaded = load_model("sample:digits_mlp")
    source = ExportSource.from_loaded(loaded)
    out = {}
    for fmt, name in (("pt2", "m.pt2"), ("torchscript", "m.ts")):
        result = export_model(source, fmt, folder / name)
        assert result.verified, result.error
        out[fmt] = folder / name
    return out


def assert_one_line_refusal(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("variant", ["sample_inputs", "pickled_weight", "opaque_constant", "custom_constant", "aotinductor"])
def test_pt2_with_code_is_refused_without_trust(exported, tmp_path, variant):
    marker = tmp_path / "ran"
    path = pt2_variants(exported["pt2"], tmp_path, str(marker))[variant]
    with pytest.raises(CheckpointError, match="refused.*--trust"):
        load_model(str(path))
    assert not marker.exists()
    proc = run_cli("inspect", str(path))
    assert_one_line_refusal(proc, str(path), "--trust")
    assert not marker.exists()


def test_pt2_sample_input_payload_runs_only_when_trusted(exported, tmp_path):
    marker = tmp_path / "ran"
    path = pt2_variants(exported["pt2"], tmp_path, str(marker))["sample_inputs"]
    with pytest.raises(CheckpointError):   # trusted: torch unpickles it (the payload runs), then rejects it
        load_model(str(path), trust=True)
    assert marker.exists()


def test_legacy_pt2_layout_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = legacy_pt2(tmp_path, str(marker))
    assert_one_line_refusal(run_cli("inspect", str(path)), "older .pt2 layout", "--trust")
    assert not marker.exists()


def test_clean_pt2_needs_trust_and_then_loads_without_data(exported):
    assert_one_line_refusal(run_cli("inspect", str(exported["pt2"])), "torch.export archive is a program", "--trust")
    loaded = load_model(str(exported["pt2"]), trust=True)
    assert loaded.input_shape == (1, 8, 8)
    loaded.module.eval()                      # used to raise NotImplementedError
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(loaded.module(x), load_model("sample:digits_mlp").module.eval()(x), atol=1e-5)
    proc = run_cli("inspect", str(exported["pt2"]), "--json", "--trust")
    assert proc.returncode == 0, proc.stderr


def test_pt2_exports_to_other_formats(exported, tmp_path):
    proc = run_cli("export", str(exported["pt2"]), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--trust")
    assert proc.returncode == 0, proc.stderr
    assert "verified" in proc.stdout


def test_torchscript_is_code_and_needs_trust(exported, tmp_path):
    for path in (exported["torchscript"], tmp_path / "renamed.pt"):
        if path.suffix == ".pt":
            path.write_bytes(exported["torchscript"].read_bytes())
        assert_one_line_refusal(run_cli("inspect", str(path)), "TorchScript", "--trust")
    proc = run_cli("inspect", str(exported["torchscript"]), "--trust", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"input_shape": [\n  1,\n  8,\n  8\n ]' in proc.stdout


def test_teacher_file_in_a_recipe_follows_trust(exported, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: sample:digits_mlp\ndata: sample:digits\nstages:\n"
                      f"  - kind: distill\n    teacher: {exported['torchscript']}\n    epochs: 1\n")
    proc = run_cli("run", str(recipe), "--out", str(tmp_path / "run"))
    assert_one_line_refusal(proc, "stages[0].teacher", "TorchScript", "--trust")
    assert not (tmp_path / "run").exists()


def test_pickled_objects_refused_and_corrupt_files_named_as_corrupt(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickled({"w": torch.zeros(2), "x": Payload(str(marker))}))
    assert_one_line_refusal(run_cli("inspect", str(evil)), "pickled Python objects", "--trust")
    assert not marker.exists()
    rnd = tmp_path / "random.pt"
    rnd.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).to(torch.uint8).numpy().tobytes())
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path, words in ((rnd, ("corrupt",)), (empty, ("empty",))):
        proc = run_cli("inspect", str(path))
        assert_one_line_refusal(proc, *words)
        assert "--trust" not in proc.stderr


def test_zip_bomb_is_refused_before_reading(tmp_path):
    path = zip_bomb(tmp_path / "bomb.pt")
    assert path.stat().st_size < 4 * 2**20
    with pytest.raises(CheckpointError, match="zip bomb"):
        load_model(str(path))


def test_pt2_exported_for_one_batch_size_inspects(tmp_path):
    module = load_model("sample:digits_mlp").module.eval()
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(2, 1, 8, 8),)), str(path))
    loaded = load_model(str(path), trust=True)
    assert loaded.meta["batch"] == 2 and loaded.input_shape == (1, 8, 8)
    proc = run_cli("inspect", str(path), "--json", "--trust")
    assert proc.returncode == 0, proc.stderr
    total = json.loads(proc.stdout)["total"]
    assert total["params"] == 50610 and total["weights"] == 50200 and total["flops"] == 100400   # per sample
