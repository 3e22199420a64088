"""Real models: torchvision weights from torchvision's cache (hash-checked), timm models with their own parameter
counts and preprocessing, a new classifier head for data with other classes, local weights; nothing downloaded."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from workbench.core import zoo
from workbench.core.errors import CheckpointError, SpecError
from workbench.core.specs import load_model

OFFLINE = {"WORKBENCH_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _cli(*args, tmp_path):
    env = {**os.environ, **OFFLINE, "TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf")}
    from cli_helpers import run_cli
    return run_cli(*args, env=env)


@pytest.mark.parametrize("name, params", [("resnet50", 25_557_032), ("vit_small_patch16_224", 22_050_664)])
def test_timm_models_report_timms_own_counts_and_preprocessing(name, params, tmp_path):
    import timm
    assert sum(p.numel() for p in timm.create_model(name).parameters()) == params
    proc = _cli("inspect", f"timm:{name}", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["total"]["params"] == params
    pre = info["preprocess"]
    assert pre["input_size"] == [3, 224, 224] and pre["interpolation"] == "bicubic" and len(pre["mean"]) == 3
    assert pre["crop_pct"] == timm.models.get_pretrained_cfg(name).crop_pct


def test_missing_pretrained_offline_names_the_file_and_folder(tmp_path):
    proc = _cli("inspect", "timm:resnet18:pretrained", tmp_path=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "timm/resnet18" in proc.stderr and str(tmp_path / "hf") in proc.stderr
    proc = _cli("inspect", "torchvision:resnet18:weights=DEFAULT", tmp_path=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "resnet18-f37072fd.pth" in proc.stderr and str(tmp_path / "torch" / "hub" / "checkpoints") in proc.stderr


def _cache_resnet18(tmp_path, monkeypatch, tamper: bool = False):
    """A resnet18 weights file in torchvision's cache, named with its own hash as torchvision's files are."""
    state = load_model("torchvision:resnet18", seed=3).module.state_dict()
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = folder / f"resnet18-{digest[:8]}.pth"
    tmp.rename(path)
    if tamper:
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    monkeypatch.setattr(zoo, "weights_url", lambda w: f"https://download.pytorch.org/models/{path.name}")
    return state


def test_torchvision_weights_from_the_cache_with_preprocessing_and_classes(tmp_path, monkeypatch):
    state = _cache_resnet18(tmp_path, monkeypatch)
    loaded = load_model("torchvision:resnet18:weights=DEFAULT")
    assert all(torch.equal(loaded.module.state_dict()[k], v) for k, v in state.items())
    assert loaded.preprocess == {"input_size": [3, 224, 224], "resize": 256, "crop_pct": 0.875, "interpolation": "bilinear",
                                 "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert loaded.classes[:2] == ["tench", "goldfish"] and len(loaded.classes) == 1000
    ten = load_model("torchvision:resnet18:weights=IMAGENET1K_V1", (3, 64, 64), 10)   # data with 10 classes
    assert ten.module.fc.out_features == 10 and "replaced the classifier head fc (1000 -> 10 classes)" in ten.meta["notes"][0]
    assert torch.equal(ten.module.conv1.weight, state["conv1.weight"]) and ten.classes is None
    with pytest.raises(CheckpointError, match="predicts 1000 classes but the data has 10"):
        load_model("torchvision:resnet18:weights=DEFAULT", (3, 64, 64), 10, keep_head=True)
    with pytest.raises(SpecError, match="available: DEFAULT, IMAGENET1K_V1"):
        load_model("torchvision:resnet18:weights=NOPE")


def test_tampered_torchvision_weights_are_refused(tmp_path, monkeypatch):
    _cache_resnet18(tmp_path, monkeypatch, tamper=True)
    with pytest.raises(CheckpointError, match="does not match the hash in its name"):
        load_model("torchvision:resnet18:weights=DEFAULT")


def test_timm_local_weights_and_a_new_head(tmp_path):
    import timm
    source = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    same = load_model(f"timm:resnet18:weights={path}")
    assert torch.equal(same.module.conv1.weight, source.conv1.weight) and same.num_classes == 1000
    five = load_model(f"timm:resnet18:weights={path}", (3, 32, 32), 5)
    assert five.module.fc.out_features == 5 and torch.equal(five.module.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert "replaced the classifier head fc" in five.meta["notes"][0]


def test_random_weights_follow_the_seed():
    a, b, c = (load_model("torchvision:resnet18", seed=s).module.conv1.weight for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(load_model("timm:resnet18", seed=4).module.fc.weight, load_model("timm:resnet18", seed=4).module.fc.weight)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_atto"])      # ViT, MixNet, DPN: tests/test_timm_layers.py
def test_timm_model_prunes_quantizes_and_exports(name, tmp_path):
    """Structured pruning, an ONNX export of the pruned model and int8, replayable without pickles."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: fake:3x32x32:10:48\nstages:\n"
                      "  - {kind: prune, structured: true, sparsity: 0.3, finetune_epochs: 1}\n"
                      "  - {kind: export, formats: [onnx, safetensors]}\n"
                      "  - {kind: quantize, method: int8_static, calib_batches: 1}\n")
    out = tmp_path / "run"
    proc = _cli("run", str(recipe), "--model", f"timm:{name}", "--out", str(out), "--quiet", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    base, pruned, int8 = report["snapshots"]
    assert pruned["params"] < 0.8 * base["params"] and pruned["flops"] < base["flops"]
    assert int8["flops"] is None and int8["compressed_format"] == "state_dict"
    assert {e["format"]: e["verified"] for e in report["exports"]} == {"onnx": True, "safetensors": True}
    for folder in ("01-prune", "02-quantize"):          # snapshots replay from their record
        reloaded = load_model(str(out / "snapshots" / folder))
        assert reloaded.record["base"] == f"timm:{name}" and reloaded.record["transforms"]
    again = load_model(str(out / report["exports"][1]["path"]))
    assert sum(p.numel() for p in again.module.parameters()) == pruned["params"]


def test_a_bare_state_dict_for_other_classes_is_refused_unless_replace_head(tmp_path):
    state = load_model("torchvision:resnet18", seed=2).module.state_dict()
    path = tmp_path / "r18.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="fc: the checkpoint's head has 1000 classes, the data has 10; pass "
                                              "--replace-head"):
        load_model(str(path), (3, 32, 32), 10, arch="torchvision:resnet18")
    loaded = load_model(str(path), (3, 32, 32), 10, arch="torchvision:resnet18", replace_head=True)
    assert "replaced the classifier head fc (1000 -> 10 classes, as asked)" in loaded.meta["notes"][0]
    assert "pretrained" not in loaded.meta["notes"][0]
    assert torch.equal(loaded.module.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with pytest.raises(CheckpointError, match=r"missing in the file: layer1\.2\."):
        load_model(str(path), (3, 32, 32), 10, arch="torchvision:resnet34")
