"""int8 post-training quantization and QAT: real int8 weights and kernels, accuracy, reload, export."""
import pytest
import torch
from cli_helpers import run_cli
from quant_helpers import make_session, run_stage
from torch import nn

from workbench.core.errors import StageError
from workbench.core.metrics import accuracy, layer_table, summarize
from workbench.core.quantization import int8
from workbench.core.snapshots import load_snapshot, save_snapshot


def _weight_dtypes(model) -> dict[str, torch.dtype]:
    """dtype of the stored weight of every quantized layer."""
    dtypes = {}
    for name, m in model.named_modules():
        if callable(getattr(m, "weight", None)):
            dtypes[name] = m.weight().dtype
    return dtypes


def test_dynamic_int8_mlp(digits, tmp_path):
    session = make_session(digits, "sample:digits_mlp", tmp_path)
    before = accuracy(session.model, digits.test)
    run_stage(session, "quantize", 1, method="int8_dynamic")
    assert _weight_dtypes(session.model) == {"fc1": torch.qint8, "fc2": torch.qint8, "fc3": torch.qint8}
    assert int8.int8_weight_bytes(session.model) == 64 * 300 + 300 * 100 + 100 * 10
    assert abs(accuracy(session.model, digits.test) - before) <= 0.02
    rows = layer_table(session.model, digits.example_input(1))
    assert [r.flops for r in rows] == [None, None, None]      # int8 kernels cannot be counted: null, never 0
    assert summarize(rows)["flops"] is None
    assert all(r.sparsity is not None and r.sparsity < 0.05 for r in rows)   # int8 Linear layers are still prunable layers
    assert session.record["transforms"][-1]["op"] == "int8_dynamic"
    path = save_snapshot(session, 1, "quantize", None)
    assert (path / "model.pt").exists()
    reloaded = load_snapshot(path).module.eval()
    x = digits.example_input(16)
    assert torch.equal(reloaded(x), session.model(x))


def test_static_int8_resnet_runs_int8_convolutions(digits, tmp_path):
    session = make_session(digits, "sample:digits_resnet", tmp_path)
    before = accuracy(session.model, digits.test)
    events = run_stage(session, "quantize", 1, method="int8_static", calib_batches=4)
    dtypes = _weight_dtypes(session.model)
    assert len(dtypes) == 10 and set(dtypes.values()) == {torch.qint8}   # 9 convs (bn fused) + fc
    assert abs(accuracy(session.model, digits.test) - before) <= 0.03
    warnings = [e.text for e in events if getattr(e, "level", "") == "warning"]
    assert any("resize (Upsample)" in w for w in warnings)       # bilinear resize stays in float: said so
    rows = {r.name: r for r in layer_table(session.model)}
    assert rows["layer1.0.conv1"].params == 16 * 16 * 9 + 16
    path = save_snapshot(session, 1, "quantize", None)
    reloaded = load_snapshot(path).module
    x = digits.example_input(8)
    assert torch.equal(reloaded(x), session.model(x))
    # the int8 snapshot exports to a state dict (verified) and refuses the float-only packed format
    out = tmp_path / "int8.pt"
    ok = run_cli("export", str(path), "--format", "state_dict", "--out", str(out), "--data", "sample:digits")
    assert ok.returncode == 0 and "verified" in ok.stdout, ok.stderr
    sd = torch.load(out, weights_only=True)
    assert sd["layer1.0.conv1.weight"].dtype == torch.qint8
    bad = run_cli("export", str(path), "--format", "packed", "--out", str(tmp_path / "x.packed"))
    assert bad.returncode == 1 and "quantized" in bad.stderr


def test_qat_trains_then_converts(digits):
    session = make_session(digits, "sample:digits_mlp")
    before = accuracy(session.model, digits.test)
    run_stage(session, "quantize", 1, method="qat", finetune_epochs=1, lr=1e-4, calib_batches=2)
    assert set(_weight_dtypes(session.model).values()) == {torch.qint8}
    assert abs(accuracy(session.model, digits.test) - before) <= 0.03


def test_dynamic_without_linear_layers_says_why():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    with pytest.raises(StageError, match=r"Linear/LSTM/GRU.*Conv2d.*int8_static"):
        int8.convert_dynamic(model)


def test_ops_without_int8_kernels_are_named():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 10)

        def forward(self, x):
            x = torch.cumsum(self.conv(x), 1)
            return self.fc(nn.functional.gelu(x).flatten(1))

    x = torch.randn(2, 1, 8, 8)
    prepared = int8.prepare_static(Odd(), x)
    list(int8.calibrate(prepared, [(x, None)], 1))
    model = int8.convert(prepared)
    int8.check_runs(model, x)
    islands = int8.float_islands(model)
    assert "cumsum (cumsum)" in islands and "gelu (gelu)" in islands
    assert not any("conv" in i or "fc" in i for i in islands)


def test_untraceable_model_fails_with_a_message():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(StageError, match="cannot trace the model"):
        int8.prepare_static(Branchy(), torch.randn(1, 4))
