"""Every model spec prefix, every file kind, and the errors for bad ones."""
import pickle
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from workbench.core.errors import CheckpointError, SpecError
from workbench.core.models import torchvision_names
from workbench.core.specs import load_model


def test_sample_models_load_with_their_accuracy(digits):
    from workbench.core.metrics import accuracy
    for name in ("digits_mlp", "digits_cnn", "digits_resnet", "digits_teacher"):
        m = load_model(f"sample:{name}")
        assert m.input_shape == (1, 8, 8) and m.num_classes == 10
        assert m.init_state is not None
        acc = accuracy(m.module, digits.test)
        assert acc >= 0.96, (name, acc)
        assert abs(acc - m.meta["accuracy"]) < 1e-3


def test_arch_specs_use_classic_or_data_shapes():
    lenet300 = load_model("arch:lenet300")
    assert [p.shape for p in lenet300.module.parameters()][0] == (300, 784)
    assert lenet300.module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    mlp = load_model("arch:mlp:hidden=32-16", (1, 8, 8), 10)
    assert [tuple(p.shape) for n, p in mlp.module.named_parameters() if n.endswith("weight")] == [(32, 64), (16, 32), (10, 16)]
    lenet5 = load_model("arch:lenet5", (3, 32, 32), 7)
    assert lenet5.module(torch.zeros(1, 3, 32, 32)).shape == (1, 7)
    resnet8 = load_model("arch:resnet8")
    assert resnet8.input_shape == (3, 32, 32)
    assert resnet8.module(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert any(isinstance(m, nn.BatchNorm2d) for m in resnet8.module.modules())


def test_torchvision_specs():
    assert len(torchvision_names()) >= 80
    m = load_model("torchvision:resnet18", num_classes=10)
    assert m.module.fc.out_features == 10 and m.input_shape == (3, 224, 224)
    for name in ("mobilenet_v3_small", "squeezenet1_1", "inception_v3"):
        m = load_model(f"torchvision:{name}")
        with torch.no_grad():
            assert m.module.eval()(torch.zeros(1, *m.input_shape)).shape == (1, 1000)


@pytest.mark.parametrize("spec,needle", [
    ("torchvision:resnet181", "did you mean resnet18"),
    ("arch:lenet6", "did you mean lenet5"),
    ("arch:mlp:hidden=abc", "sizes like 300-100"),
    ("arch:mlp:width=3", "unknown option"),
    ("sample:digits_mpl", "did you mean digits_mlp"),
    ("torchvison:resnet18", "did you mean torchvision"),
    ("/no/such/file.pt", "no such file"),
])
def test_bad_specs_name_the_problem(spec, needle):
    with pytest.raises(SpecError) as exc:
        load_model(spec)
    assert needle in str(exc.value)


@pytest.fixture()
def mlp_state():
    m = load_model("arch:mlp:hidden=16", (1, 8, 8), 10)
    return m.module.state_dict(), m


def _out(module, x):
    with torch.no_grad():
        return module.eval()(x)


def test_bare_state_dicts_need_arch(tmp_path, mlp_state):
    sd, ref = mlp_state
    x = torch.randn(3, 1, 8, 8)
    pt, st = tmp_path / "w.pt", tmp_path / "w.safetensors"
    torch.save(sd, pt)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    for path in (pt, st):
        with pytest.raises(CheckpointError, match="--arch"):
            load_model(str(path))
        m = load_model(str(path), (1, 8, 8), 10, arch="arch:mlp:hidden=16")
        assert torch.equal(_out(m.module, x), _out(ref.module, x))
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, tmp_path / "ckpt.pth")
    m = load_model(str(tmp_path / "ckpt.pth"), (1, 8, 8), 10, arch="arch:mlp:hidden=16")
    assert torch.equal(_out(m.module, x), _out(ref.module, x))


def test_mismatched_state_dict_lists_keys_and_shapes(tmp_path, mlp_state):
    sd, _ = mlp_state
    torch.save(sd, tmp_path / "w.pt")
    with pytest.raises(CheckpointError) as exc:
        load_model(str(tmp_path / "w.pt"), (1, 8, 8), 10, arch="arch:mlp:hidden=32")
    msg = str(exc.value)
    assert "fc1.weight [16, 64] vs [32, 64]" in msg and "with arch:mlp:hidden=32: the weights do not fit" in msg
    with pytest.raises(CheckpointError, match="missing in the file: fc3.weight"):
        load_model(str(tmp_path / "w.pt"), (1, 8, 8), 10, arch="arch:mlp:hidden=16-8")


def test_workbench_safetensors_reload_without_arch(tmp_path):
    from workbench.core.export.safetensors_format import save
    m = load_model("sample:digits_cnn")
    save(m.module, m.record, tmp_path / "cnn.safetensors")
    again = load_model(str(tmp_path / "cnn.safetensors"))
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(_out(again.module, x), _out(m.module, x))


def test_pt2_and_torchscript_files(tmp_path):
    m = load_model("sample:digits_mlp").module.eval()
    x = torch.randn(2, 1, 8, 8)
    torch.export.save(torch.export.export(m, (x,)), str(tmp_path / "m.pt2"))
    pt2 = load_model(str(tmp_path / "m.pt2"), trust=True)
    assert pt2.input_shape == (1, 8, 8)
    assert torch.allclose(pt2.module(x), m(x))
    torch.jit.save(torch.jit.trace(m, x), str(tmp_path / "m.ts.pt"))
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_model(str(tmp_path / "m.ts.pt"))
    ts = load_model(str(tmp_path / "m.ts.pt"), trust=True)
    assert ts.input_shape == (64,)          # guessed from its first layer: no record in a foreign file
    assert torch.allclose(ts.module(x), m(x))


class Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_hostile_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "x": Payload(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="--trust"):
        load_model(str(evil))
    assert not marker.exists()
    raw = tmp_path / "raw.pkl.pt"
    raw.write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(CheckpointError):
        load_model(str(raw))
    assert not marker.exists()


def test_full_model_pickle_only_with_trust(tmp_path):
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    torch.save(m, tmp_path / "full.pt")
    with pytest.raises(CheckpointError, match="--trust"):
        load_model(str(tmp_path / "full.pt"))
    loaded = load_model(str(tmp_path / "full.pt"), (1, 8, 8), 10, trust=True)
    assert isinstance(loaded.module, nn.Sequential)


def test_corrupt_and_truncated_files(tmp_path):
    sd = load_model("arch:mlp:hidden=16", (1, 8, 8), 10).module.state_dict()
    torch.save(sd, tmp_path / "ok.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "ok.safetensors"))
    for name in ("ok.pt", "ok.safetensors"):
        data = (tmp_path / name).read_bytes()
        bad = tmp_path / f"trunc_{name}"
        bad.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match="corrupt|truncated"):
            load_model(str(bad), arch="arch:mlp:hidden=16")
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError):
        load_model(str(junk))
    with zipfile.ZipFile(tmp_path / "empty.pt", "w") as zf:
        zf.writestr("x", "y")
    with pytest.raises(CheckpointError):
        load_model(str(tmp_path / "empty.pt"), arch="arch:mlp:hidden=16")


def test_unknown_file_type(tmp_path):
    p = tmp_path / "model.h5"
    p.write_bytes(b"x")
    with pytest.raises(SpecError, match="unknown file type"):
        load_model(str(p))
