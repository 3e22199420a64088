"""Model specs -> nn.Module.

`sample:NAME`, `torchvision:NAME`, `arch:NAME[:k=v,...]`, or a path: `.safetensors` or `.pt/.pth`
state dict (with `arch=`), `.pt2` (torch.export), TorchScript, a workbench snapshot folder. Pickled
full models load only with `trust=True`; everything else goes through `torch.load(weights_only=True)`.
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

from . import archs, transforms, untrusted
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


def _unwrap_checkpoint(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if all(isinstance(k, str) for k in obj) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module."): v for k, v in obj.items()}
    return None


def _frozen(module: nn.Module, path: Path, shape, classes, fmt: str, info: dict | None = None) -> LoadedModel:
    """A model loaded as a whole (no record to rebuild it from): it can be measured and exported, not restructured."""
    info = info or {}
    ishape = tuple(info.get("input_shape") or shape or guess_input_shape(module) or ())
    return LoadedModel(module, str(path), ishape, int(info.get("num_classes") or classes or 0),
                       {"base": str(path), "frozen": True}, meta={"format": fmt})


def guess_input_shape(module: nn.Module) -> tuple[int, ...] | None:
    """The input a model loaded whole most likely takes, from its first weight: C x 224 x 224 for a convolution."""
    for p in module.parameters():
        if p.ndim == 4:
            return (int(p.shape[1]), 224, 224)
        if p.ndim == 2:
            return (int(p.shape[1]),)
    return None


def _load_file(path: Path, arch: str | None, shape, classes, trust: bool) -> LoadedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    suffix = path.suffix.lower()
    if suffix == ".packed":  # Deep Compression packed file: its header holds the record
        from .export.packed import load as load_packed
        return load_packed(path)
    if suffix == ".pt2":
        program = untrusted.load_pt2_program(path, trust)
        module = untrusted.trainable_module(program)
        example = program.example_inputs[0][0] if program.example_inputs and program.example_inputs[0] else None
        ishape = tuple(example.shape[1:]) if isinstance(example, torch.Tensor) else None
        return _frozen(module, path, ishape or shape, classes, "pt2")
    if suffix in (".pt", ".pth", ".ts", ".jit", ".bin", ".ckpt") and untrusted.is_torchscript(path):
        module, info = untrusted.load_torchscript(path, trust)
        return _frozen(module, path, shape, classes, "torchscript", info)
    if suffix in (".ts", ".jit"):
        raise CheckpointError(f"{path}: not a TorchScript archive (corrupt, truncated or another kind of file)")

    record = None
    if suffix == ".safetensors":
        try:
            sd = load_file(str(path))
            from safetensors import safe_open
            with safe_open(str(path), "pt") as fh:
                meta = fh.metadata() or {}
            record = json.loads(meta["workbench_record"]) if "workbench_record" in meta else None
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({str(exc)[:120]})") from None
    elif suffix in (".pt", ".pth", ".bin", ".ckpt"):
        obj = untrusted.load_pickle(path, trust)
        if isinstance(obj, nn.Module):
            return _frozen(obj, path, shape, classes, "pickle")
        sd = _unwrap_checkpoint(obj)
        if sd is None:
            raise CheckpointError(f"{path}: not a state dict (expected a mapping of names to tensors)")
        if isinstance(obj, dict) and isinstance(obj.get("workbench_record"), str):
            record = json.loads(obj["workbench_record"])
    else:
        raise SpecError(f"{path}: unknown file type {suffix!r} (use .safetensors, .pt/.pth, .pt2 or a snapshot folder)")

    if record is not None and arch is None:
        module = rebuild(record)
        load_state_into(module, sd, record["base"])
        return LoadedModel(module, str(path), tuple(record["input_shape"]), record["num_classes"], record)
    if arch is None:
        raise CheckpointError(f"{path}: a bare state dict; name its architecture with --arch (e.g. --arch arch:lenet5)")
    base = load_model(arch, shape, classes)
    load_state_into(base.module, sd, arch)
    base.spec = str(path)
    return base


def rebuild(record: dict) -> nn.Module:
    """Rebuild the architecture a record describes (untrained weights)."""
    module, _, _ = build_base(record["base"], tuple(record["input_shape"]), record["num_classes"])
    return transforms.replay(module, record.get("transforms", []))


def load_model(spec: str, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
               arch: str | None = None, trust: bool = False) -> LoadedModel:
    """Resolve a model spec. `input_shape`/`num_classes` come from the data when known."""
    if not isinstance(spec, str) or not spec:
        raise SpecError("empty model spec")
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in ("arch", "torchvision"):
        module, shape, classes = build_base(spec, input_shape, num_classes)
        record = {"base": spec, "input_shape": list(shape), "num_classes": classes, "transforms": []}
        init = {k: v.clone() for k, v in module.state_dict().items()}
        return LoadedModel(module, spec, shape, classes, record, init_state=init)
    if sep and prefix == "sample":
        info = sample_index().get(rest)
        if info is None:
            raise SpecError(f"unknown sample model {rest!r}{_suggest(rest, sample_index())}"
                            f" (available: {', '.join(sample_index()) or 'none'})")
        from safetensors.torch import load_file
        record = {"base": info["arch"], "input_shape": info["input_shape"], "num_classes": info["num_classes"], "transforms": []}
        module = rebuild(record)
        load_state_into(module, load_file(str(SAMPLE_DIR / info["weights"])), info["arch"])
        init_path = SAMPLE_DIR / info.get("init", "")
        init = load_file(str(init_path)) if info.get("init") and init_path.exists() else None
        return LoadedModel(module, spec, tuple(info["input_shape"]), info["num_classes"], record, init_state=init,
                           meta={"data": info.get("data"), "accuracy": info.get("accuracy")})
    path = Path(spec).expanduser()
    if path.is_dir():
        from .snapshots import load_snapshot
        return load_snapshot(path)
    if path.exists():
        return _load_file(path, arch, input_shape, num_classes, trust)
    if sep and len(prefix) > 1 and not spec.startswith(("/", ".", "~")):
        known = ["sample", "torchvision", "arch"]
        raise SpecError(f"unknown model spec prefix {prefix!r}{_suggest(prefix, known)} (known: {', '.join(known)}, or a file path)")
    raise SpecError(f"{spec}: no such file or folder")


def clone_module(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module)
