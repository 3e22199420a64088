"""pt2, TorchScript, ONNX and ONNX int8 exports: written, read back by a fresh loader, verified; errors are reported."""
import pytest
import torch
from cli_helpers import run_cli
from prune_helpers import assert_ok, run_recipe

from workbench.core.export import formats
from workbench.core.snapshot_tools import export_spec
from workbench.core.specs import load_model


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_program_formats_reload_as_model_specs(tmp_path, fmt, digits):
    out = tmp_path / f"m{formats()[fmt].suffix}"
    result = export_spec("sample:digits_resnet", fmt, out, "sample:digits")
    assert result.verified and result.max_abs_diff == 0.0 and result.bytes == out.stat().st_size
    reloaded = load_model(str(out), trust=fmt == "torchscript").module   # a model spec of its own (TorchScript is code)
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
    exports = {e["format"]: e for e in run.report["exports"]}
    assert set(exports) == {"pt2", "torchscript", "onnx", "onnx_int8"}
    assert all(e["verified"] and e["bytes"] > 0 for e in exports.values())
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
    snapshot = tmp_path / "run" / run.report["snapshots"][-1]["path"]
    result = export_spec(str(snapshot), "onnx", tmp_path / "q.onnx", "sample:digits")
    assert not result.verified and "onnx_int8" in result.error
    assert not (tmp_path / "q.onnx").exists()                # nothing half-written
