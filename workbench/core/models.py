"""Models at the lowest layer: build an architecture, load a state dict into it, rebuild one from a record.

`LoadedModel` is what every model source yields. Built-in specs (`sample:NAME`, `torchvision:NAME`,
`arch:NAME[:k=v,...]`) are built here; resolving any spec string, files and snapshot folders included,
is `core/specs.py`, which sits above the snapshot store and the export formats.
"""
from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import archs, transforms
from .errors import CheckpointError, SpecError

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_models"
TV_DEFAULT_SHAPE = (3, 224, 224)
TV_SHAPES = {"inception_v3": (3, 299, 299)}


@dataclass
class LoadedModel:
    module: nn.Module
    spec: str
    input_shape: tuple[int, int, int]
    num_classes: int
    record: dict                        # {"base": spec, "input_shape", "num_classes", "transforms": [...]}
    init_state: dict[str, torch.Tensor] | None = None   # weights at initialisation (lottery ticket)
    state: dict[str, Any] = field(default_factory=dict)  # compression state (masks, codebooks) from a snapshot
    meta: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def torchvision_names() -> list[str]:
    import torchvision
    return sorted(torchvision.models.list_models(module=torchvision.models))


@lru_cache(maxsize=1)
def sample_index() -> dict[str, dict]:
    path = SAMPLE_DIR / "samples.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _suggest(name: str, options: list[str] | dict) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def build_base(base: str, input_shape: tuple[int, int, int] | None, num_classes: int | None) -> tuple[nn.Module, tuple, int]:
    """Build an untrained model from an `arch:` or `torchvision:` spec; returns (module, input_shape, classes)."""
    prefix, _, rest = base.partition(":")
    if prefix == "arch":
        name = archs.parse_arch(rest)[0]
        shape = tuple(input_shape or archs.ARCHS[name][1]) if name in archs.ARCHS else None
        module = archs.build_arch(rest, shape, num_classes)
        return module, shape, num_classes or 10
    if prefix == "torchvision":
        import torchvision
        if rest not in torchvision_names():
            raise SpecError(f"unknown torchvision model {rest!r}{_suggest(rest, torchvision_names())}")
        classes = num_classes or 1000
        kwargs: dict[str, Any] = {"weights": None, "num_classes": classes}
        if rest in ("inception_v3", "googlenet"):
            kwargs.update(aux_logits=False, init_weights=False)
        module = torchvision.models.get_model(rest, **kwargs)
        shape = tuple(input_shape or TV_SHAPES.get(rest, TV_DEFAULT_SHAPE))
        return module, shape, classes
    raise SpecError(f"cannot build an architecture from {base!r}: use arch:NAME or torchvision:NAME")


def _mismatch(model: nn.Module, sd: dict[str, torch.Tensor], arch: str) -> str | None:
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {list(sd[k].shape)} vs {list(own[k].shape)}" for k in own
              if k in sd and hasattr(sd[k], "shape") and tuple(sd[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape file vs arch", shapes)):
        if items:
            parts.append(f"{label}: {', '.join(items[:4])}" + (f" (+{len(items) - 4} more)" if len(items) > 4 else ""))
    return f"state dict does not fit {arch}: " + "; ".join(parts)


def load_state_into(model: nn.Module, sd: dict[str, torch.Tensor], arch: str) -> None:
    problem = _mismatch(model, sd, arch)
    if problem:
        raise CheckpointError(problem)
    model.load_state_dict(sd, strict=True)


def from_record(sd: dict[str, torch.Tensor], record: dict, spec: str) -> LoadedModel:
    """The model a record describes, with the weights `sd`."""
    module = rebuild(record)
    load_state_into(module, sd, record["base"])
    return LoadedModel(module, spec, tuple(record["input_shape"]), record["num_classes"], record)


def rebuild(record: dict) -> nn.Module:
    """Rebuild the architecture a record describes (untrained weights)."""
    module, _, _ = build_base(record["base"], tuple(record["input_shape"]), record["num_classes"])
    return transforms.replay(module, record.get("transforms", []))


def load_builtin(spec: str, input_shape: tuple[int, int, int] | None = None,
                 num_classes: int | None = None) -> LoadedModel | None:
    """A model named by a built-in spec (`sample:`, `arch:`, `torchvision:`); None for anything else."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in ("arch", "torchvision"):
        module, shape, classes = build_base(spec, input_shape, num_classes)
        record = {"base": spec, "input_shape": list(shape), "num_classes": classes, "transforms": []}
        init = {k: v.clone() for k, v in module.state_dict().items()}
        return LoadedModel(module, spec, shape, classes, record, init_state=init)
    if sep and prefix == "sample":
        return _load_sample(spec, rest)
    return None


def _load_sample(spec: str, name: str) -> LoadedModel:
    info = sample_index().get(name)
    if info is None:
        raise SpecError(f"unknown sample model {name!r}{_suggest(name, sample_index())}"
                        f" (available: {', '.join(sample_index()) or 'none'})")
    from safetensors.torch import load_file
    record = {"base": info["arch"], "input_shape": info["input_shape"], "num_classes": info["num_classes"], "transforms": []}
    module = rebuild(record)
    load_state_into(module, load_file(str(SAMPLE_DIR / info["weights"])), info["arch"])
    init_path = SAMPLE_DIR / info.get("init", "")
    init = load_file(str(init_path)) if info.get("init") and init_path.exists() else None
    return LoadedModel(module, spec, tuple(info["input_shape"]), info["num_classes"], record, init_state=init,
                       meta={"data": info.get("data"), "accuracy": info.get("accuracy")})


def clone_module(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module)
