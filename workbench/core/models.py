"""Models at the lowest layer: build an architecture, load a state dict into it, rebuild one from a record.

`LoadedModel` is what every model source yields. Built-in specs (`sample:NAME`, `torchvision:NAME`,
`arch:NAME[:k=v,...]`) are built here; resolving any spec string, files and snapshot folders included,
is `core/specs.py`, which sits above the snapshot store and the export formats.
"""
from __future__ import annotations

import copy
import difflib
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import torch
from torch import nn

from . import archs, limits, memory_budget, transforms, zoo
from .errors import BadInput, CheckpointError, SpecError
from .limits import clip, human_bytes, model_size_problem, short
from .record_checks import _named, _why, check_layout, check_record, count, layout, on_meta, tensor_bytes
from .resources import samples_dir

SAMPLE_DIR = samples_dir()


@dataclass
class LoadedModel:
    module: nn.Module
    spec: str
    input_shape: tuple[int, int, int]
    num_classes: int
    record: dict[str, Any]              # {"base": spec, "input_shape", "num_classes", "transforms": [...]}
    init_state: dict[str, torch.Tensor] | None = None   # weights at initialisation (lottery ticket)
    state: dict[str, Any] = field(default_factory=dict)  # compression state (masks, codebooks) from a snapshot
    meta: dict[str, Any] = field(default_factory=dict)   # "notes": what loading did (a head replaced), ...

    @property
    def preprocess(self) -> dict[str, Any] | None:
        """How inputs are prepared for this model (from its weights), carried in the record."""
        pre: dict[str, Any] | None = self.record.get("preprocess")
        return pre

    @property
    def classes(self) -> list[str] | None:
        names: list[str] | None = self.record.get("classes")
        return names


def torchvision_names() -> list[str]:
    return zoo.torchvision_names()


@lru_cache(maxsize=1)
def sample_index() -> dict[str, dict[str, Any]]:
    path = SAMPLE_DIR / "samples.json"
    from .io import read_json
    return read_json(path, max_bytes=limits.MAX_JSON_BYTES, follow_links=True) if path.exists() else {}


def _suggest(name: str, options: list[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def build_base(base: str, input_shape: tuple[int, int, int] | None, num_classes: int | None,
               check_size: bool = True) -> tuple[nn.Module, archs.InputShape, int]:
    """Build an untrained model from an `arch:` or `torchvision:` spec; returns (module, input_shape, classes).

    The model is first built on the meta device (no memory) and refused when it is too large to build (its size
    is remembered for the process: building the same architecture again skips the meta build)."""
    if check_size:
        size_check(_meta_size(base, input_shape, num_classes), base)
    return _construct(base, input_shape, num_classes)


@lru_cache(maxsize=256)
def _meta_size(base: str, input_shape: tuple[int, int, int] | None, num_classes: int | None) -> tuple[int, int]:
    """(parameters and buffers, bytes) of the model `_construct` builds from these arguments (a pure function of
    them), worked out on the meta device."""
    return count(on_meta(lambda: _construct(base, input_shape, num_classes)[0]))


def _construct(base: str, input_shape: tuple[int, int, int] | None,
               num_classes: int | None) -> tuple[nn.Module, archs.InputShape, int]:
    if not isinstance(base, str):
        raise SpecError(f"expected a model spec, got {short(base)}")
    prefix, _, rest = base.partition(":")
    if prefix == "arch":
        name = archs.parse_arch(rest)[0]
        shape = cast(archs.InputShape, tuple(input_shape or archs.ARCHS[name][1])) if name in archs.ARCHS else None
        module = archs.build_arch(rest, shape, num_classes)
        assert shape is not None        # build_arch refused an unknown name
        return module, shape, num_classes or 10
    if prefix in zoo.ZOOS:
        zs = zoo.parse(base)
        classes = num_classes or zoo.weights_classes(zs) or 1000
        return zoo.build(zs, classes), cast(archs.InputShape, tuple(input_shape or zoo.default_shape(zs))), classes
    raise SpecError(f"cannot build an architecture from {short(base)}: use arch:NAME, torchvision:NAME or timm:NAME")


def size_check(size: tuple[int, int], what: str) -> None:
    """SpecError when a model of `size` (parameters and buffers, bytes) is too large to build here (the memory
    available is read each time)."""
    params, nbytes = size
    problem = model_size_problem(params, nbytes) or memory_budget.model_problem(nbytes)
    if problem:
        raise SpecError(f"{clip(what)}: {problem}")


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


def from_record(sd: dict[str, torch.Tensor], record: Any, spec: str) -> LoadedModel:
    """The model a record describes, with the weights `sd`. The record is validated and the model worked out
    on the meta device and compared with the tensors in `sd` before anything is built for real."""
    record = check_record(record, spec)
    expected = planned_layout(record, spec, tensor_bytes(sd))
    if expected is not None:
        check_layout(expected, layout(sd), spec, record["base"])
    module = rebuild(record, spec, checked=True)
    try:
        load_state_into(module, sd, record["base"])
    except CheckpointError as exc:
        raise CheckpointError(_named(spec, exc.message)) from None
    return LoadedModel(module, spec, tuple(record["input_shape"]), record["num_classes"], record)


def rebuild(record: Any, source: str = "model record", checked: bool = False) -> nn.Module:
    """Rebuild the architecture a record describes (untrained weights). Unless `checked` (by `check_record`
    and `planned_layout`), the record is validated and a model too large to build is refused first."""
    if not checked:
        record = check_record(record, source)
    try:
        module, _, _ = build_base(record["base"], tuple(record["input_shape"]), record["num_classes"], check_size=not checked)
        return transforms.replay(module, record.get("transforms", []))
    except BadInput as exc:
        raise CheckpointError(_named(source, exc.message)) from None
    except Exception as exc:  # noqa: BLE001 - a record naming something that cannot be built or replayed
        raise CheckpointError(f"{source}: cannot rebuild the model its record describes ({_why(exc)})") from None


def planned_layout(record: dict[str, Any], source: str, file_bytes: int) -> dict[str, tuple[tuple[int, ...], str]] | None:
    """name -> (shape, dtype) of every tensor of the model a checked record describes, worked out on the meta
    device (nothing allocated); CheckpointError when the model is too large to build. None when a transform
    cannot be replayed on the meta device (int8 conversion reads values): the model up to that transform must
    then be in proportion to the `file_bytes` of weights the file holds."""
    try:
        module = on_meta(lambda: _construct(record["base"], tuple(record["input_shape"]), record["num_classes"])[0])
    except BadInput as exc:
        raise CheckpointError(_named(source, exc.message)) from None
    except Exception as exc:  # noqa: BLE001 - a base that cannot be built
        raise CheckpointError(f"{source}: cannot build {clip(record['base'])} ({_why(exc)})") from None
    complete = True
    for t in record.get("transforms", []):
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = transforms.replay(module, [t])
        except Exception:  # noqa: BLE001 - bounded by the file's size below; the real replay reports errors
            complete = False
            break
    params, nbytes = count(module)
    problem = model_size_problem(params, nbytes) or memory_budget.model_problem(nbytes)
    if problem:
        raise CheckpointError(f"{source}: {clip(record['base'])}: {problem}")
    if complete:
        return layout(module.state_dict())
    if nbytes > limits.FILE_EXPANSION * file_bytes + limits.FILE_SLACK_BYTES:
        raise CheckpointError(f"{source}: its record describes a model of {human_bytes(nbytes)}, "
                              f"but the file holds {human_bytes(file_bytes)} of weights")
    return None


def load_builtin(spec: str, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
                 seed: int = 0, trust: bool = False, keep_head: bool = False, keep_init: bool = True) -> LoadedModel | None:
    """A model named by a built-in spec (`sample:`, `arch:`, `torchvision:`, `timm:`); None for anything else.

    Random weights come from `seed` alone (the browser and a run build the same model); pretrained weights
    are loaded through the zoo's cache (see `zoo.py`), with the classifier head replaced when the data has
    another number of classes (said in `meta["notes"]`) unless `keep_head`. Random weights are copied to
    `init_state` (a lottery-ticket rewind) unless `keep_init` is false."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in ("arch", *zoo.ZOOS):
        zs = zoo.parse(spec) if prefix in zoo.ZOOS else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module, shape, classes = build_base(spec, input_shape, num_classes)
        record: dict[str, Any] = {"base": spec, "input_shape": list(shape), "num_classes": classes, "transforms": []}
        notes: list[str] = []
        if zs is not None and zs.weights is not None:
            notes = zoo.load_weights(module, zoo.pretrained_state(zs, trust), spec, keep_head)
        if zs is not None:
            record.update({k: v for k, v in (("preprocess", zoo.preprocess(zs)), ("classes", zoo.class_names(zs))) if v})
            if record.get("classes") and len(record["classes"]) != classes:
                record.pop("classes")      # a replaced head: the weights' class names no longer apply
        untrained = zs is None or zs.weights is None   # its initial weights kept for a rewind, unless not wanted
        init = {k: v.clone() for k, v in module.state_dict().items()} if untrained and keep_init else None
        return LoadedModel(module, spec, shape, classes, record, init_state=init, meta={"notes": notes})
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
