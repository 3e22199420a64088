"""Model zoos: torchvision architectures and weights, and timm's image classifiers.

    torchvision:NAME                          random weights (seeded by the caller)
    torchvision:NAME:weights=DEFAULT|ENUM     torchvision's weights, from its cache ($TORCH_HOME/hub/checkpoints)
    timm:NAME                                 random weights
    timm:NAME:pretrained                      timm's pretrained weights, from the Hugging Face cache
    timm:NAME:weights=PATH                    a local .safetensors / .pth for that architecture

Weights are read only through torchvision's and timm's own mechanisms and caches (downloaded only when
online; `HF_HUB_OFFLINE` is honoured). A torchvision file in the cache is hash-checked against the hash in
its name before it is read, as torchvision does when it downloads, so a tampered file is refused. The
model's preprocessing (input size, resize and crop, interpolation, mean, std) and class names come from the
weights' metadata or timm's pretrained config. The architecture is always built for the data's number of
classes; pretrained weights fill every layer but a classifier head of another size, which stays freshly
initialised (and the notes say so), unless `keep_head` refuses instead.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from .errors import CheckpointError, HeadMismatch, SpecError
from .limits import short

ZOOS = ("torchvision", "timm")
TV_SHAPES = {"inception_v3": (3, 299, 299)}
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")      # torch.hub's convention: name-<sha256 prefix>.pth


@dataclass(frozen=True)
class ZooSpec:
    zoo: str                    # torchvision | timm
    name: str
    weights: str | None = None  # torchvision: DEFAULT or an enum name; timm: "pretrained" or a file path

    @property
    def base(self) -> str:
        return f"{self.zoo}:{self.name}"


def parse(spec: str) -> ZooSpec:
    zoo, _, rest = spec.partition(":")
    name, _, option = rest.partition(":")
    if zoo not in ZOOS or not name:
        raise SpecError(f"{short(spec)}: expected torchvision:NAME or timm:NAME")
    if not option:
        return ZooSpec(zoo, name)
    if zoo == "timm" and option == "pretrained":
        return ZooSpec(zoo, name, "pretrained")
    key, eq, value = option.partition("=")
    if key != "weights" or not eq or not value:
        hint = "timm:NAME:pretrained or timm:NAME:weights=PATH" if zoo == "timm" else "torchvision:NAME:weights=DEFAULT"
        raise SpecError(f"{short(spec)}: unknown option {short(option)} (use {hint})")
    return ZooSpec(zoo, name, value)


# --- names ------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def torchvision_names() -> list[str]:
    import torchvision
    return sorted(torchvision.models.list_models(module=torchvision.models))


@lru_cache(maxsize=1)
def timm_names() -> list[str]:
    import timm
    return timm.list_models()


def check_name(zs: ZooSpec) -> None:
    import difflib
    names = torchvision_names() if zs.zoo == "torchvision" else timm_names()
    known = zs.name in names or (zs.zoo == "timm" and zs.name.partition(".")[0] in names)
    if not known:
        close = difflib.get_close_matches(zs.name, names, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpecError(f"unknown {zs.zoo} model {short(zs.name)}{hint}")


# --- architectures ----------------------------------------------------------------------------------------
def _tv_weights(zs: ZooSpec) -> Any:
    """The torchvision weights enum member a spec names (asked for only when it names weights)."""
    from torchvision.models import get_model_weights
    assert zs.weights is not None
    enum = get_model_weights(zs.name)
    if zs.weights.upper() == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[zs.weights]
    except KeyError:
        raise SpecError(f"{zs.base}:weights={short(zs.weights)}: torchvision has no such weights for {zs.name} "
                        f"(available: DEFAULT, {', '.join(w.name for w in enum)})") from None


def _tv_kwargs(zs: ZooSpec) -> dict[str, Any]:
    """Constructor arguments that make the architecture match its weights (as torchvision's builders set them)."""
    kwargs: dict[str, Any] = {}
    if zs.name in ("inception_v3", "googlenet"):
        kwargs.update(aux_logits=False, init_weights=False, transform_input=zs.weights is not None)
    if zs.weights is not None:
        min_size = _tv_weights(zs).meta.get("min_size")
        if zs.name.startswith("vit_") and min_size:
            kwargs["image_size"] = int(min_size[0])
    return kwargs


def default_shape(zs: ZooSpec) -> tuple[int, int, int]:
    pre = preprocess(zs)
    if pre:
        return tuple(pre["input_size"])
    return TV_SHAPES.get(zs.name, (3, 224, 224))


def build(zs: ZooSpec, num_classes: int) -> nn.Module:
    """The architecture, untrained (random weights from torch's current random state)."""
    check_name(zs)
    if zs.zoo == "torchvision":
        import torchvision
        module: nn.Module = torchvision.models.get_model(zs.name, weights=None, num_classes=num_classes, **_tv_kwargs(zs))
        return module
    import timm
    model: nn.Module = timm.create_model(zs.name, pretrained=False, num_classes=num_classes)
    return model


def weights_classes(zs: ZooSpec) -> int | None:
    """How many classes the pretrained weights predict (None for random weights or unknown)."""
    if zs.weights is None:
        return None
    if zs.zoo == "torchvision":
        return len(_tv_weights(zs).meta["categories"])
    cfg = _timm_cfg(zs)
    return int(cfg["num_classes"]) if cfg and cfg.get("num_classes") else None


# --- preprocessing and class names -----------------------------------------------------------------------
def _timm_cfg(zs: ZooSpec) -> dict[str, Any] | None:
    from timm.models import get_pretrained_cfg
    try:
        cfg = get_pretrained_cfg(zs.name)
    except (RuntimeError, KeyError, ValueError):
        return None
    return cfg.to_dict() if cfg is not None else None  # type: ignore[no-untyped-call]  # timm's PretrainedCfg.to_dict is not annotated


def preprocess(zs: ZooSpec) -> dict[str, Any] | None:
    """input_size, resize, crop_pct, interpolation, mean, std: what the weights were trained with."""
    if zs.zoo == "torchvision":
        if zs.weights is None:
            return None
        t = _tv_weights(zs).transforms()
        crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
        return {"input_size": [3, crop, crop], "resize": resize, "crop_pct": round(crop / resize, 4),
                "interpolation": t.interpolation.value, "mean": list(t.mean), "std": list(t.std)}
    cfg = _timm_cfg(zs)
    if not cfg:
        return None
    size = list(cfg.get("input_size", (3, 224, 224)))
    crop_pct = float(cfg.get("crop_pct", 0.875))
    return {"input_size": size, "resize": int(round(size[-1] / crop_pct)), "crop_pct": crop_pct,
            "interpolation": cfg.get("interpolation", "bicubic"), "mean": list(cfg.get("mean", (0.485, 0.456, 0.406))),
            "std": list(cfg.get("std", (0.229, 0.224, 0.225))), "crop_mode": cfg.get("crop_mode", "center")}


def class_names(zs: ZooSpec) -> list[str] | None:
    if zs.weights is None:
        return None
    if zs.zoo == "torchvision":
        return list(_tv_weights(zs).meta["categories"])
    from timm.data import ImageNetInfo, infer_imagenet_subset
    cfg = _timm_cfg(zs)
    subset = infer_imagenet_subset(cfg) if cfg else None
    return list(ImageNetInfo(subset).label_descriptions()) if subset else None


# --- pretrained weights ----------------------------------------------------------------------------------
def pretrained_state(zs: ZooSpec, trust: bool = False) -> dict[str, torch.Tensor]:
    """The weights a spec names, read from the zoo's cache (or the given file)."""
    if zs.zoo == "torchvision":
        return _torchvision_state(zs)
    if zs.weights == "pretrained":
        return _timm_hub_state(zs)
    assert zs.weights is not None          # asked for only when the spec names weights
    return _file_state(Path(zs.weights).expanduser(), zs, trust)


def _torchvision_state(zs: ZooSpec) -> dict[str, torch.Tensor]:
    from .untrusted import load_pickle
    weights = _tv_weights(zs)
    url = weights_url(weights)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    filename = os.path.basename(urlparse(url).path)
    path = folder / filename
    if not path.exists():
        where = f"{zs.base}:weights={zs.weights}: the weights file {filename} is not in {folder}"
        if offline():
            raise SpecError(f"{where} and downloads are off (WORKBENCH_OFFLINE / HF_HUB_OFFLINE); "
                            f"download {url} and put it there")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=None, progress=False)
        except Exception as exc:  # noqa: BLE001 - offline, proxy, disk: say where the file should go
            raise SpecError(f"{where} and could not be downloaded ({_first(exc)}); download {url} "
                            f"and put it there") from None
    prefix = _HASH_IN_NAME.search(filename)
    if prefix:
        digest = _sha256(path)
        if not digest.startswith(prefix.group(1)):
            raise CheckpointError(f"{path}: its SHA-256 ({digest[:12]}...) does not match the hash in its name "
                                  f"({prefix.group(1)}): tampered with or corrupt; delete it to download it again")
    state: dict[str, torch.Tensor] = load_pickle(path, trust=False)
    return state


def weights_url(weights: Any) -> str:
    """The download address of a torchvision weights enum member."""
    url: str = weights.url
    return url


def _timm_hub_state(zs: ZooSpec) -> dict[str, torch.Tensor]:
    """The cache first (no network at all when the file is there); offline and not cached: refused at once,
    without the hub's retries; otherwise timm's own loader downloads it."""
    cfg = _timm_cfg(zs)
    hub_id = (cfg or {}).get("hf_hub_id")
    if not hub_id:
        raise SpecError(f"{zs.base}:pretrained: timm has no Hugging Face weights for {zs.name}")
    from huggingface_hub import constants
    cached = _hub_cached_file(hub_id)
    if cached is not None:
        return _cached_state(cached, zs)
    if offline():
        raise _hub_missing(zs, hub_id, constants.HF_HUB_CACHE, " and downloads are off (WORKBENCH_OFFLINE / HF_HUB_OFFLINE)")
    from timm.models import load_state_dict_from_hf
    try:
        state: dict[str, torch.Tensor] = load_state_dict_from_hf(hub_id, weights_only=True)
    except Exception:  # noqa: BLE001 - no network, a proxy, a full disk: say where the file should go
        raise _hub_missing(zs, hub_id, constants.HF_HUB_CACHE, " and could not be downloaded") from None
    return state


def _hub_cached_file(hub_id: str) -> Path | None:
    """The weights file of a Hugging Face repository in the local cache (no network), or None."""
    from huggingface_hub import try_to_load_from_cache
    repo, _, revision = hub_id.partition("@")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str):
            return Path(found)
    return None


def _cached_state(path: Path, zs: ZooSpec) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return _file_state(path, zs, trust=False)
    from .untrusted import load_pickle
    state: dict[str, torch.Tensor] = load_pickle(path, trust=False)
    return state


def _hub_missing(zs: ZooSpec, hub_id: str, cache: str, why: str) -> SpecError:
    return SpecError(f"{zs.base}:pretrained: the weights {hub_id} (model.safetensors) are not in the Hugging Face "
                     f"cache {cache}{why}; download them where you are online ({hub_download_hint(hub_id)}) and "
                     f"copy the cache, or use timm:{zs.name}:weights=PATH")


def hub_download_hint(hub_id: str) -> str:
    """The download command of the installed huggingface_hub: `hf download` (since 0.34), else `huggingface-cli`."""
    import shutil
    from importlib.metadata import entry_points
    scripts = {e.name for e in entry_points(group="console_scripts") if e.value.startswith("huggingface_hub")}
    if "hf" in scripts or (not scripts and shutil.which("hf")):
        return f"hf download {hub_id.partition('@')[0]}"
    return f"huggingface-cli download {hub_id.partition('@')[0]}"


def _file_state(path: Path, zs: ZooSpec, trust: bool) -> dict[str, torch.Tensor]:
    from .untrusted import load_pickle
    if not path.is_file():
        raise SpecError(f"{zs.base}:weights={short(str(path))}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({_first(exc)})") from None
    obj = load_pickle(path, trust)
    for key in ("state_dict", "model", "state_dict_ema", "model_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not (isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise CheckpointError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def head_classes(module: nn.Module, sd: dict[str, torch.Tensor]) -> int | None:
    """The checkpoint's class count when its classifier is the only layer whose shape differs from `module`'s."""
    own = module.state_dict()
    wrong = {k.rsplit(".", 1)[0] for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)}
    weight = f"{next(iter(wrong))}.weight" if len(wrong) == 1 else ""
    return int(sd[weight].shape[0]) if weight in sd and sd[weight].dim() >= 1 else None


def _other_classes(weight: str, sd: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> bool:
    """Whether the one layer that differs is a classifier for another class count: its outputs differ, its inputs
    do not (a layer whose inputs differ, e.g. weights for another image size, is no head to replace)."""
    if weight not in sd or sd[weight].dim() < 1:
        return False
    a, b = tuple(sd[weight].shape), tuple(own[weight].shape)
    return a[0] != b[0] and a[1:] == b[1:]


def load_weights(module: nn.Module, sd: dict[str, torch.Tensor], spec: str, keep_head: bool,
                 own_weights: bool = False, replace_head: bool = False) -> list[str]:
    """Load weights into an architecture built for the data's classes. Pretrained weights with a classifier head
    of another size keep the new head: the notes say which; `keep_head` refuses instead. A user's own weights
    (`own_weights`) are refused for another class count unless `replace_head`. Other mismatches refuse."""
    own = module.state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith(("AuxLogits.", "aux1.", "aux2."))}   # aux heads: not built
    wrong = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    heads = {k.rsplit(".", 1)[0] for k in wrong}
    if missing or unexpected or len(heads) > 1 or (heads and not _other_classes(f"{next(iter(heads))}.weight", sd, own)):
        parts = []
        for label, items in (("missing in the file", missing), ("not in the architecture", unexpected),
                             ("file vs architecture", [f"{k} {list(sd[k].shape)} vs {list(own[k].shape)}" for k in wrong])):
            if items:
                parts.append(f"{label}: {', '.join(items[:3])}" + (f" (+{len(items) - 3} more)" if len(items) > 3 else ""))
        raise CheckpointError(f"{spec}: the weights do not fit the architecture ({'; '.join(parts)})")
    notes = []
    if heads:
        head = heads.pop()
        weight = f"{head}.weight"
        before, after = int(sd[weight].shape[0]), int(own[weight].shape[0])
        if own_weights and not replace_head:
            raise HeadMismatch(f"{spec}: {head}: the checkpoint's head has {before} classes, the data has {after}; "
                               f"pass --replace-head (or replace_head: true) to train a new head", head, before, after)
        if keep_head and not own_weights:
            raise CheckpointError(f"{spec}: the weights' classifier {head} predicts {before} classes but the data has "
                                  f"{after}; without keep_head the head would be replaced")
        notes.append(f"replaced the classifier head {head} ({before} -> {after} classes, as asked); every other "
                     f"layer has the checkpoint's weights" if own_weights else
                     f"replaced the classifier head {head} ({before} -> {after} classes); every other layer has "
                     f"the pretrained weights")
        sd = {k: v for k, v in sd.items() if k not in wrong}
        sd.update({k: own[k] for k in wrong})
    module.load_state_dict(sd, strict=True)
    return notes


def offline() -> bool:
    """Downloads are off: `WORKBENCH_OFFLINE=1` (or Hugging Face's `HF_HUB_OFFLINE=1`, which timm honours)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on") for k in ("WORKBENCH_OFFLINE", "HF_HUB_OFFLINE"))


def timm_cached(name: str) -> bool:
    """Whether timm's pretrained weights for `name` are in the local Hugging Face cache."""
    cfg = _timm_cfg(ZooSpec("timm", name, "pretrained"))
    hub_id = (cfg or {}).get("hf_hub_id")
    if not hub_id:
        return False
    from huggingface_hub import try_to_load_from_cache
    return any(isinstance(try_to_load_from_cache(hub_id, f), str) for f in ("model.safetensors", "pytorch_model.bin"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:160]
