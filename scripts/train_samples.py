"""Train the bundled sample models on `sample:digits`, deterministically on the CPU (about a minute).

    python scripts/train_samples.py            # all of them
    python scripts/train_samples.py digits_mlp # one

Writes NAME.safetensors (trained weights), NAME.init.safetensors (the weights at initialisation,
for lottery-ticket rewinding) and samples.json (architecture, data, val and test accuracy). They train on the
train split only (1,294 images): the val split (144) stays unseen, so decisions taken on val are honest.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parents[1] / "sample_models"   # where the sample models live
sys.path.insert(0, str(HERE.parent))   # the repository root

from workbench.core.data import load_data  # noqa: E402
from workbench.core.metrics import accuracy, count_params  # noqa: E402
from workbench.core.session import Session  # noqa: E402
from workbench.core.specs import load_model  # noqa: E402
from workbench.core.training import fit  # noqa: E402

# name -> (architecture, epochs, optimizer, lr, weight decay, description)
SAMPLES = {
    "digits_mlp": ("arch:mlp:hidden=300-100", 80, "adamw", 2e-3, 1e-2, "LeNet-300-100 shape: 64-300-100-10 MLP"),
    "digits_cnn": ("arch:lenet5", 60, "adam", 1e-3, 0.0, "LeNet-5 style CNN, input resized to 32x32"),
    "digits_resnet": ("arch:resnet8", 30, "adam", 2e-3, 1e-4, "ResNet-8 (BatchNorm, 16-32-64 channels), input resized to 32x32"),
    "digits_teacher": ("arch:resnet8:width=32", 30, "adam", 2e-3, 1e-4, "ResNet-8 at twice the width (32-64-128), teacher for distillation"),
}


def save(tensors: dict, path: Path) -> None:
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(path))


def train_one(name: str) -> dict:
    arch, epochs, opt, lr, wd, desc = SAMPLES[name]
    torch.manual_seed(0)
    data = load_data("sample:digits", seed=0)
    loaded = load_model(arch, data.input_shape, data.num_classes)
    save(loaded.module.state_dict(), HERE / f"{name}.init.safetensors")
    session = Session(loaded, data, "cpu", 0)
    for _event in fit(session, epochs, lr, opt, "cosine", wd, 64, evaluate=False):
        pass
    model = session.model.eval()
    save(model.state_dict(), HERE / f"{name}.safetensors")
    acc, val = accuracy(model, data.test), accuracy(model, data.val)
    params, _ = count_params(model)
    print(f"{name}: {arch}, {params:,} parameters, val accuracy {val:.4f}, test accuracy {acc:.4f}")
    return {"arch": arch, "data": "sample:digits", "input_shape": list(data.input_shape), "num_classes": data.num_classes,
            "weights": f"{name}.safetensors", "init": f"{name}.init.safetensors", "accuracy": round(acc, 4), "val_accuracy": round(val, 4),
            "params": params, "epochs": epochs, "optimizer": opt, "lr": lr, "weight_decay": wd, "description": desc}


def main(names: list[str]) -> None:
    index_path = HERE / "samples.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for name in names or list(SAMPLES):
        index[name] = train_one(name)
    index_path.write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
