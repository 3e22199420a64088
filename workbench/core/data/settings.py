"""Data settings: the recipe's `data:` as a plain spec string or a mapping, validated with field paths.

    data: cifar10:/data/cifar
    data: {spec: imagefolder:/data/pets, val_fraction: 0.1, augment: standard, batch_size: 64,
           eval_batch_size: 256, workers: 4, image_size: 224, subset: 2000,
           preprocess: {resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}
    data: {spec: imagefolder:/data/digits32, preprocess: none}      # the images are ready: only scaled to [0, 1]

`preprocess` is parsed by `preprocess.parse_preprocess` (the Open data dialog validates with the same function).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .. import limits
from ..errors import RecipeError, SpecError
from ..limits import short
from .preprocess import PreprocessSettings, check_with_size, parse_preprocess

AUGMENT = ("none", "standard")


@dataclass(frozen=True)
class DataSettings:
    spec: str
    val_fraction: float = 0.1          # carved from train with the seed, unless the data has its own val split
    augment: str = "none"              # standard: random crop + flips (CIFAR/SVHN), random-resized-crop + flips (folders)
    batch_size: int | None = None      # training batches (None: 64, or 32 for image folders); stages may override
    eval_batch_size: int = 256         # val / test batches
    workers: int | None = None         # loader processes for image folders (None: up to 4, one per core)
    image_size: int | None = None      # resize to this (None: the model's preprocessing, else the data's own size)
    subset: int | None = None          # train on only this many samples (a quick try)
    preprocess: PreprocessSettings | str | None = None   # resize/crop/mean/std, "none", or None: the weights' or default

    def to_dict(self) -> dict[str, Any]:
        """The mapping form, leaving out what is at its default."""
        default = DataSettings(self.spec)
        out = {k: v for k, v in asdict(self).items() if k == "spec" or v != getattr(default, k)}
        if isinstance(self.preprocess, PreprocessSettings):
            out["preprocess"] = self.preprocess.to_dict()
        return out

    def plain(self) -> bool:
        return self.to_dict() == {"spec": self.spec}


RANGES = {"val_fraction": (0.0, 0.9), "batch_size": (1, 65536), "eval_batch_size": (1, 65536), "workers": (0, 64),
          "image_size": (1, limits.MAX_IMAGE_SIDE), "subset": (1, 10**9)}


def parse_settings(raw: Any, path: str = "data") -> DataSettings:
    """A spec string or a mapping -> DataSettings; RecipeError naming the field otherwise."""
    if isinstance(raw, DataSettings):
        return raw
    if isinstance(raw, str):
        return DataSettings(raw)
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a data spec or a mapping with a 'spec', got {short(raw)}")
    names = {f.name for f in fields(DataSettings)}
    for key in raw:
        if key not in names:
            raise RecipeError(f"{path}.{key}: unknown data setting (known: {', '.join(sorted(names))})")
    if not isinstance(raw.get("spec"), str) or not raw["spec"]:
        raise RecipeError(f"{path}.spec: expected a data spec such as cifar10:/data/cifar, got {short(raw.get('spec'))}")
    values: dict[str, Any] = {"spec": raw["spec"]}
    for key, value in raw.items():
        if key == "spec":
            continue
        values[key] = _check(key, value, f"{path}.{key}")
    check_with_size(values.get("preprocess"), values.get("image_size"), path)
    return DataSettings(**values)


def _check(key: str, value: Any, path: str) -> Any:
    if key == "preprocess":
        return parse_preprocess(value, path)
    if key == "augment":
        if value not in AUGMENT:
            raise RecipeError(f"{path}: must be one of {', '.join(AUGMENT)}, got {short(value)}")
        return value
    lo, hi = RANGES[key]
    if key == "val_fraction":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RecipeError(f"{path}: must be a finite number, got {short(value)}")
        if not lo <= value <= hi:
            raise RecipeError(f"{path}: must be in [{lo}, {hi}], got {value}")
        return float(value)
    if value is None and key != "eval_batch_size":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecipeError(f"{path}: expected a whole number, got {short(value)}")
    if not lo <= value <= hi:
        raise RecipeError(f"{path}: must be in [{lo}, {hi:,}], got {value}")
    return value


def as_spec_error(exc: RecipeError) -> SpecError:
    return SpecError(exc.message)
