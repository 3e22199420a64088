"""pt2, TorchScript, ONNX and ONNX int8 exports: written, read back by a fresh loader, verified; errors are reported."""
import os
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from prune_helpers import assert_ok, run_recipe

from workbench.core.export import ExportSource, export_model, formats
from workbench.core.snapshot_tools import export_spec
from workbench.core.specs import load_model


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_program_formats_reload_as_model_specs(tmp_path, fmt, digits):
    out = tmp_path / f"m{formats()[fmt].suffix}"
    result = export_spec("sample:digits_resnet", fmt, out, "sample:digits")
    assert result.verified and result.max_abs_diff == 0.0 and result.bytes == out.stat().st_size
    reloaded = load_model(str(out), trust=True).module       # a model spec of its own (a program: trusted)
    original = load_model("sample:digits_resnet").module.eval()
    x = digits.example_input(5)                              # another batch size than the export's example
    with torch.no_grad():
        assert torch.allclose(reloaded(x), original(x), atol=1e-5)


def test_onnx_runs_in_onnxruntime_with_any_batch(tmp_path, digits):
    import onnx

    from workbench.core.export.onnx import runner
    out = tmp_path / "m.onnx"
    result = export_spec("sample:digits_cnn", "onnx", out, "sample:digits")
    assert result.verified and result.max_abs_diff < 1e-4
    onnx.checker.check_model(str(out))
    model = load_model("sample:digits_cnn").module.eval()
    x = digits.example_input(3)
    with torch.no_grad():
        assert torch.allclose(runner(out)(x), model(x), atol=1e-4)


def test_onnx_int8_is_smaller_and_agrees_with_the_model(tmp_path, digits):
    fp32 = export_spec("sample:digits_resnet", "onnx", tmp_path / "m.onnx", "sample:digits")
    q = export_spec("sample:digits_resnet", "onnx_int8", tmp_path / "m.int8.onnx", "sample:digits")
    assert q.verified, q.error
    assert q.details["calibration_samples"] == 256 and q.details["top1_agreement"] >= 0.9
    assert q.bytes < 0.45 * fp32.bytes                       # int8 weights: about a quarter, plus scales and graph
    import onnx
    graph = onnx.load(str(tmp_path / "m.int8.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_inits = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert sum(len(i.raw_data) for i in int8_inits) > 70_000   # the convolution weights are stored as int8
    # accuracy of the int8 file on the whole test split
    from workbench.core.export.onnx import runner
    run = runner(tmp_path / "m.int8.onnx")
    correct = sum(int((run(x).argmax(1) == y).sum()) for x, y in digits.test)
    assert correct / digits.test.num_samples > 0.97


def test_export_stage_and_cli_write_every_format(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - kind: export
    formats: [pt2, torchscript, onnx, onnx_int8]
""", tmp_path)
    assert_ok(events)
    exports = {e["format"]: e for e in run.report.data["exports"]}
    assert set(exports) == {"pt2", "torchscript", "onnx", "onnx_int8"}
    assert all(e["verified"] and e["bytes"] > 0 and e["check"] for e in exports.values())
    assert exports["onnx_int8"]["check"].startswith("top-1 agreement >= 95% on 64+ inputs")
    assert exports["onnx_int8"]["breakdown"]["verified_on"] >= 64 and exports["pt2"]["check"].startswith("max |output diff|")
    assert (tmp_path / "run" / exports["onnx"]["path"]).exists()
    done = run_cli("export", "sample:digits_mlp", "--format", "onnx", "--out", str(tmp_path / "cli.onnx"))
    assert done.returncode == 0 and "verified" in done.stdout


def test_int8_torch_model_to_onnx_says_why(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - kind: quantize
    method: int8_dynamic
""", tmp_path)
    assert_ok(events)
    snapshot = tmp_path / "run" / run.report.data["snapshots"][-1]["path"]
    result = export_spec(str(snapshot), "onnx", tmp_path / "q.onnx", "sample:digits")
    assert not result.verified and "onnx_int8" in result.error
    assert not (tmp_path / "q.onnx").exists()                # nothing half-written


@pytest.mark.parametrize("setting", ["dir: /tmp/outside", "dir: ../../up", "name: ../../x", "name: sub/x"])
def test_export_stage_writes_only_inside_the_run_folder(tmp_path, setting):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: sample:digits_mlp\nstages:\n  - kind: export\n    {setting}\n")
    proc = run_cli("run", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and f"stages[0].{setting.split(':')[0]}" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists() and not Path("/tmp/outside").exists()


def test_export_cli_bad_out_is_exit_2_and_files_get_normal_permissions(tmp_path):
    proc = run_cli("export", "sample:digits_mlp", "--format", "safetensors", "--out", str(tmp_path))
    assert proc.returncode == 2 and "is a folder" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("export", "sample:digits_mlp", "--format", "safetensors", "--out", str(tmp_path / "no" / "m.safetensors"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    out = tmp_path / "m.safetensors"
    assert run_cli("export", "sample:digits_mlp", "--format", "safetensors", "--out", str(out)).returncode == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask        # not the 0600 of a temporary file


def test_a_file_that_fails_verification_is_not_left_under_its_name(tmp_path, monkeypatch):
    fmt = formats()["safetensors"]
    monkeypatch.setattr(fmt, "tolerance", -1.0)              # nothing can pass
    result = export_model(ExportSource.from_loaded(load_model("sample:digits_mlp")), "safetensors", tmp_path / "m.safetensors")
    assert not result.verified and "not kept" in result.error
    assert list(tmp_path.iterdir()) == []
