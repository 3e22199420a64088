"""The preprocessing the loaders apply before the model sees an image: resize, centre crop, normalise.

A recipe's `data:` may set it, all or part (`preprocess: {resize: 37, crop: 32, mean: [...], std: [...]}`), or say
`preprocess: none`: the images are ready, nothing is done but scaling pixels to [0, 1] (no resize, crop or
normalisation). What the settings leave out comes from the model's weights (torchvision's weights, timm's config, a
snapshot's record) and, without them, from the default: for image folders ImageNet's mean and std, a resize to
size / 0.875 and a centre crop; for the built-in data sets their own statistics at their own size. `resolve` says
which is used and where it came from, so the model panel, `workbench inspect`, runs and exports show and apply the
same preprocessing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import limits
from ..errors import RecipeError, SpecError
from ..limits import short

NONE = "none"
KEYS = ("resize", "crop", "mean", "std")
MAX_CHANNELS = 4
STD_MIN = 1e-6
ORIGINS = {"yours": "yours", "weights": "the weights' own", "default": "the default", NONE: "none: the tensors are ready"}


@dataclass(frozen=True)
class PreprocessSettings:
    """The preprocessing a recipe's `data.preprocess` mapping sets; None: not set (the weights' or the default)."""
    resize: int | None = None                 # the shorter side is resized to this
    crop: int | None = None                   # then a centre crop of crop x crop: the model's input side
    mean: tuple[float, ...] | None = None     # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k in KEYS if (v := getattr(self, k)) is not None}


def parse_preprocess(raw: Any, path: str = "data.preprocess") -> PreprocessSettings | str | None:
    """`none`, a mapping of resize, crop, mean, std (any of them) or nothing; RecipeError naming the field otherwise."""
    if raw is None or isinstance(raw, PreprocessSettings):
        return raw
    if raw == NONE:
        return NONE
    expected = f"expected none or a mapping of {', '.join(KEYS)}"
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: {expected}, got {short(raw)}")
    if not raw:
        raise RecipeError(f"{path}: {expected}, got an empty mapping (leave it out for the weights' own or the default)")
    for key in raw:
        if key not in KEYS:
            name = key if isinstance(key, str) and key.isidentifier() and len(key) <= 40 else short(key, 40)
            raise RecipeError(f"{path}.{name}: unknown preprocessing setting (known: {', '.join(sorted(KEYS))})")
    sides = {key: _side(raw.get(key), f"{path}.{key}") for key in ("resize", "crop")}
    stats = {key: _numbers(raw.get(key), f"{path}.{key}", key == "std") for key in ("mean", "std")}
    if (stats["mean"] is None) != (stats["std"] is None):
        missing = "std" if stats["std"] is None else "mean"
        raise RecipeError(f"{path}.{missing}: give mean and std together")
    if stats["mean"] is not None and stats["std"] is not None and len(stats["mean"]) != len(stats["std"]):
        raise RecipeError(f"{path}.std: {len(stats['std'])} value(s) but mean has {len(stats['mean'])}")
    if sides["resize"] is not None and sides["crop"] is not None and sides["crop"] > sides["resize"]:
        raise RecipeError(f"{path}.crop: {sides['crop']} is larger than resize {sides['resize']} "
                          "(the crop is cut from the resized image)")
    return PreprocessSettings(sides["resize"], sides["crop"], stats["mean"], stats["std"])


def _side(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecipeError(f"{path}: expected a whole number of pixels, got {short(value)}")
    if not 1 <= value <= limits.MAX_IMAGE_SIDE:
        raise RecipeError(f"{path}: must be in [1, {limits.MAX_IMAGE_SIDE}], got {value}")
    return value


def _numbers(value: Any, path: str, positive: bool) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_CHANNELS:
        raise RecipeError(f"{path}: expected a list of 1 to {MAX_CHANNELS} numbers (one per channel), got {short(value)}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise RecipeError(f"{path}[{i}]: expected a finite number, got {short(v)}")
        if positive and v < STD_MIN:
            raise RecipeError(f"{path}[{i}]: must be positive (at least {STD_MIN:g}), got {v}")
    return tuple(float(v) for v in value)


def check_with_size(pre: PreprocessSettings | str | None, image_size: int | None, path: str = "data") -> None:
    """RecipeError when the image size and the preprocessing contradict each other."""
    if image_size is None:
        return
    if pre == NONE:
        raise RecipeError(f"{path}.image_size: preprocess is none (images are used as they are); leave image_size out "
                          "or set preprocess's resize and crop")
    if isinstance(pre, PreprocessSettings) and pre.crop is not None and pre.crop != image_size:
        raise RecipeError(f"{path}.image_size: {image_size}, but preprocess.crop is {pre.crop}; the crop is the image "
                          "size (give one of them)")


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing a loader applies, resolved. `source`: "yours" (the data settings set some of it), "weights"
    (the model's own), "default" or "none"; `rest`: where what the settings leave out came from."""
    source: str
    size: int | None                      # the input's side (the centre crop); None: the images' own size
    resize: int | None                    # the shorter side is first resized to this; None: straight to size x size
    mean: tuple[float, ...] | None        # on pixels in [0, 1]; None: not normalised
    std: tuple[float, ...] | None
    interpolation: str = "bilinear"
    crop_pct: float | None = None         # size / resize when the resize is not given (None: no crop)
    rest: str = ""
    stats_from: str = ""                  # where mean and std came from (the loaders keep a data set's own exactly)
    default: str = ""                     # what the default is, in words

    def to_dict(self) -> dict[str, Any]:
        uses_default = "default" in (self.source, self.rest) and self.default
        return {"source": self.source, **({"rest": self.rest} if self.rest else {}),
                **({"default": self.default} if uses_default else {}), "size": self.size,
                "resize": self.resize, "crop": self.size if self.resize else None,
                "mean": list(self.mean) if self.mean else None, "std": list(self.std) if self.std else None,
                "interpolation": None if self.source == NONE else self.interpolation}


def describe(pre: dict[str, Any]) -> tuple[str, str]:
    """(where it came from, what it does) in words, from `Preprocessing.to_dict()`: the model panel's and
    `workbench inspect`'s line."""
    origin = ORIGINS.get(pre.get("source", ""), str(pre.get("source")))
    if pre.get("rest"):
        origin += f"; the rest {ORIGINS.get(pre['rest'], pre['rest'])}"
    if pre.get("default"):
        origin += f": {pre['default']}"
    if pre.get("source") == NONE:
        return origin, "pixels scaled to [0, 1]; no resize, crop or normalisation"
    def numbers(v: list[float]) -> str:
        return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"
    steps = []
    if pre.get("resize"):
        steps.append(f"resize {pre['resize']}, centre crop {pre['crop']}")
    elif pre.get("size"):
        steps.append(f"resize to {pre['size']}×{pre['size']}")
    else:
        steps.append("the images' own size")
    if pre.get("interpolation") and steps[0] != "the images' own size":
        steps[0] += f" ({pre['interpolation']})"
    steps.append(f"mean {numbers(pre['mean'])}, std {numbers(pre['std'])}" if pre.get("mean") else "not normalised")
    return origin, "; ".join(steps)


def from_weights(pre: dict[str, Any] | None, crop: bool) -> Preprocessing | None:
    """The model's own preprocessing (zoo.preprocess or a record's); `crop`: resize by its crop_pct, then crop."""
    if not pre or not isinstance(pre.get("mean"), list) or not isinstance(pre.get("std"), list):
        return None
    size = pre.get("input_size")
    return Preprocessing("weights", int(size[-1]) if isinstance(size, list) and size else None, None,
                         tuple(pre["mean"]), tuple(pre["std"]), str(pre.get("interpolation", "bilinear")),
                         float(pre.get("crop_pct", 0.875)) if crop else None, stats_from="weights")


def resolve(settings_pre: PreprocessSettings | str | None, image_size: int | None, base: Preprocessing,
            channels: int, spec: str, own_side: int | None = None) -> Preprocessing:
    """The settings' preprocessing over `base` (the weights' or the default); SpecError when it does not fit.
    `own_side`: the shorter side of data held at one size (a crop without a resize is cut from it as it is)."""
    if settings_pre == NONE:
        return Preprocessing(NONE, None, None, None, None, stats_from=NONE)
    user = settings_pre if isinstance(settings_pre, PreprocessSettings) else PreprocessSettings()
    size = user.crop or image_size or base.size
    resize = user.resize or (round(size / base.crop_pct) if size and base.crop_pct else
                             own_side if user.crop else None)
    size = size or resize
    if size and resize and size > resize:
        raise SpecError(f"{spec}: data.preprocess.resize: {resize} is smaller than the input size {size}; "
                        f"give a crop of at most {resize}")
    mean, std = (user.mean, user.std) if user.mean else (base.mean, base.std)
    if mean is not None and len(mean) not in (1, channels):
        raise SpecError(f"{spec}: data.preprocess.mean: {len(mean)} values for {channels}-channel images")
    given = [user.resize or user.crop or image_size, user.mean]
    source = "yours" if any(given) else base.source
    rest = base.source if source == "yours" and not all(given) else ""
    return Preprocessing(source, size, resize, mean, std, base.interpolation, base.crop_pct, rest,
                         "yours" if user.mean else base.stats_from, base.default)
