"""`workbench export --data`: the exported file's own test accuracy (through its runtime, as the export stage
measures it), printed and in the --json output; equal to the in-process model's for a float ONNX export."""
from __future__ import annotations

import json

from cli_helpers import run_cli

from workbench.core.data import load_data
from workbench.core.metrics import accuracy
from workbench.core.specs import load_model, preprocess_of

MODEL, DATA = "sample:digits_mlp", "sample:digits"


def _model_accuracy() -> float:
    data = load_data(DATA, preprocess=preprocess_of(MODEL))
    loaded = load_model(MODEL, data.input_shape, data.num_classes)
    return accuracy(loaded.module, data.test)


def test_onnx_export_accuracy_equals_the_models(tmp_path):
    out = tmp_path / "model.onnx"
    proc = run_cli("export", MODEL, "--format", "onnx", "--out", str(out), "--data", DATA, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verified"] is True and result["path"] == str(out) and out.stat().st_size == result["bytes"]
    acc = result["accuracy"]
    assert isinstance(acc, float) and 0.0 <= acc <= 1.0
    assert abs(acc - _model_accuracy()) <= 1e-6
    assert acc > 0.5                    # a trained sample, not chance on 10 classes
    assert result["accuracy_problem"] is None and "traceback" not in result["details"]


def test_the_summary_line_names_the_files_accuracy(tmp_path):
    out = tmp_path / "model.safetensors"
    proc = run_cli("export", MODEL, "--format", "safetensors", "--out", str(out), "--data", DATA)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith(f"{out}: ") and "verified" in line
    assert f"test accuracy of the file {_model_accuracy():.2%}" in line


def test_without_data_no_accuracy_is_claimed(tmp_path):
    out = tmp_path / "model.onnx"
    proc = run_cli("export", MODEL, "--format", "onnx", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accuracy"] is None
    text = run_cli("export", MODEL, "--format", "onnx", "--out", str(out))
    assert text.returncode == 0 and "test accuracy" not in text.stdout.replace(str(out), "")


def test_bad_data_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "model.onnx"
    proc = run_cli("export", MODEL, "--format", "onnx", "--out", str(out), "--data", "nosuch:thing", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "nosuch" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_runtime_that_cannot_run_the_data_leaves_the_file_verified(tmp_path, monkeypatch, capsys):
    """Measured in-process (the runtime made to fail): exit 0, the file verified, the accuracy null with why."""
    from workbench.cli import main
    from workbench.core import snapshot_tools

    def no_runtime(*_args):
        raise RuntimeError("NOT_IMPLEMENTED: Could not find an implementation for Foo(1) node")
    monkeypatch.setattr(snapshot_tools, "file_accuracy", no_runtime)
    out = tmp_path / "model.onnx"
    assert main(["export", MODEL, "--format", "onnx", "--out", str(out), "--data", DATA, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verified"] is True and result["accuracy"] is None and out.stat().st_size == result["bytes"]
    assert result["accuracy_problem"].startswith("RuntimeError: NOT_IMPLEMENTED")
    assert main(["export", MODEL, "--format", "onnx", "--out", str(out), "--data", DATA]) == 0
    assert "its test accuracy could not be measured (RuntimeError: NOT_IMPLEMENTED" in capsys.readouterr().out
