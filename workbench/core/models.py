"""Models at the lowest layer: build an architecture, load a state dict into it, rebuild one from a record.

`LoadedModel` is what every model source yields. Built-in specs (`sample:NAME`, `torchvision:NAME`,
`arch:NAME[:k=v,...]`) are built here; resolving any spec string, files and snapshot folders included,
is `core/specs.py`, which sits above the snapshot store and the export formats.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import archs, limits, transforms
from .errors import BadInput, CheckpointError, SpecError
from .limits import clip, human_bytes, int_in, is_int, model_size_problem, shape_problem, short
from .resources import samples_dir

SAMPLE_DIR = samples_dir()
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


def build_base(base: str, input_shape: tuple[int, int, int] | None, num_classes: int | None,
               check_size: bool = True) -> tuple[nn.Module, tuple, int]:
    """Build an untrained model from an `arch:` or `torchvision:` spec; returns (module, input_shape, classes).

    The model is first built on the meta device (no memory) and refused when it is too large to build."""
    if check_size:
        size_check(on_meta(lambda: _construct(base, input_shape, num_classes)[0]), base)
    return _construct(base, input_shape, num_classes)


def _construct(base: str, input_shape: tuple[int, int, int] | None, num_classes: int | None) -> tuple[nn.Module, tuple, int]:
    if not isinstance(base, str):
        raise SpecError(f"expected a model spec, got {short(base)}")
    prefix, _, rest = base.partition(":")
    if prefix == "arch":
        name = archs.parse_arch(rest)[0]
        shape = tuple(input_shape or archs.ARCHS[name][1]) if name in archs.ARCHS else None
        module = archs.build_arch(rest, shape, num_classes)
        return module, shape, num_classes or 10
    if prefix == "torchvision":
        import torchvision
        if rest not in torchvision_names():
            raise SpecError(f"unknown torchvision model {short(rest)}{_suggest(rest, torchvision_names())}")
        classes = num_classes or 1000
        kwargs: dict[str, Any] = {"weights": None, "num_classes": classes}
        if rest in ("inception_v3", "googlenet"):
            kwargs.update(aux_logits=False, init_weights=False)
        module = torchvision.models.get_model(rest, **kwargs)
        shape = tuple(input_shape or TV_SHAPES.get(rest, TV_DEFAULT_SHAPE))
        return module, shape, classes
    raise SpecError(f"cannot build an architecture from {short(base)}: use arch:NAME or torchvision:NAME")


def size_check(module: nn.Module, what: str) -> None:
    """SpecError when `module` (built on the meta device) is too large to build here."""
    params, nbytes = count(module)
    problem = model_size_problem(params, nbytes)
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


# --- checking a record before anything is built ---------------------------------------------------------
def _named(source: str, message: str) -> str:
    return message if message.startswith(source) else f"{source}: {message}"


def _why(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:160] if lines else ''}"


def _list_of(ok, value: Any) -> bool:
    return isinstance(value, list) and all(ok(v) for v in value)


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1000


def _history_item(h: Any) -> bool:
    return (isinstance(h, list) and len(h) == 3 and _is_name(h[0]) and isinstance(h[1], bool)
            and _list_of(lambda i: int_in(i, 0, limits.MAX_LAYER_SIZE), h[2]))


def _exit(e: Any) -> bool:
    return (isinstance(e, dict) and _is_name(e.get("layer")) and int_in(e.get("features"), 1, limits.MAX_LAYER_SIZE)
            and isinstance(e.get("spatial"), bool))


def _ranks(v: Any) -> bool:
    return isinstance(v, dict) and all(_is_name(k) and int_in(r, 1, limits.MAX_LAYER_SIZE) for k, r in v.items())


_SHAPE = (lambda v: shape_problem(v) is None, "[channels, height, width]")
TRANSFORM_FIELDS: dict[str, dict[str, tuple]] = {       # op -> {required field: (check, what it should be)}
    "structured_prune": {"input_shape": _SHAPE, "history": (lambda v: _list_of(_history_item, v), "a list of [layer, bool, [indices]]")},
    "int8_dynamic": {},
    "int8_static": {"input_shape": _SHAPE},
    "qat": {"input_shape": _SHAPE},
    "cast": {"dtype": (lambda v: v in ("float16", "bfloat16", "float32"), "float16, bfloat16 or float32")},
    "lowrank": {"layers": (_ranks, "a mapping of layer names to ranks")},
    "depthwise": {"layers": (lambda v: _list_of(_is_name, v), "a list of layer names")},
    "fold_bn": {"pairs": (lambda v: _list_of(lambda p: _list_of(_is_name, p) and len(p) == 2, v), "a list of [conv, batch norm] names")},
    "early_exit": {"exits": (lambda v: _list_of(_exit, v), "a list of {layer, features, spatial}"),
                   "classes": (lambda v: int_in(v, 1, limits.MAX_CLASSES), f"an integer in [1, {limits.MAX_CLASSES:,}]")},
}


def _transform_problem(t: Any) -> str | None:
    if not isinstance(t, dict):
        return f"expected a mapping with an 'op', got {short(t)}"
    op = t.get("op")
    if op not in TRANSFORM_FIELDS:
        transforms._load_replay_modules()
        if not isinstance(op, str) or op not in transforms._REPLAYS:
            return f"op: unknown transformation {short(op)} (known: {', '.join(sorted(TRANSFORM_FIELDS))})"
    for name, (ok, what) in TRANSFORM_FIELDS.get(op, {}).items():
        if name not in t:
            return f"{name}: missing (the {op} transformation needs {what})"
        if not ok(t[name]):
            return f"{name}: expected {what}, got {short(t[name])}"
    return None


def check_record(record: Any, source: str) -> dict:
    """The record, if its structure and types are what a workbench record holds; else a one-line CheckpointError."""
    def bad(name: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{source}: workbench record: {name}: {problem}")
    if not isinstance(record, dict):
        raise CheckpointError(f"{source}: workbench record: expected a mapping, got {type(record).__name__} {short(record)}")
    if record.get("frozen"):
        raise CheckpointError(f"{source}: its record describes a model loaded whole from {short(record.get('base'))}, "
                              "which cannot be rebuilt from a record")
    if not isinstance(record.get("base"), str) or not 0 < len(record["base"]) <= 1000:
        raise bad("base", f"expected a model spec such as arch:lenet5, got {short(record.get('base'))}")
    problem = shape_problem(record["input_shape"]) if "input_shape" in record else "missing"
    if problem:
        raise bad("input_shape", problem)
    if not int_in(record.get("num_classes"), 1, limits.MAX_CLASSES):
        raise bad("num_classes", f"must be an integer in [1, {limits.MAX_CLASSES:,}], got {short(record.get('num_classes'))}")
    items = record.get("transforms", [])
    if not isinstance(items, list) or len(items) > limits.MAX_TRANSFORMS:
        raise bad("transforms", f"expected a list of at most {limits.MAX_TRANSFORMS} transformations, got {short(items)}")
    for i, t in enumerate(items):
        problem = _transform_problem(t)
        if problem:
            raise bad(f"transforms[{i}]", problem)
    return record


def planned_layout(record: dict, source: str, file_bytes: int) -> dict[str, tuple[tuple[int, ...], str]] | None:
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
    problem = model_size_problem(params, nbytes)
    if problem:
        raise CheckpointError(f"{source}: {clip(record['base'])}: {problem}")
    if complete:
        return layout(module.state_dict())
    if nbytes > limits.FILE_EXPANSION * file_bytes + limits.FILE_SLACK_BYTES:
        raise CheckpointError(f"{source}: its record describes a model of {human_bytes(nbytes)}, "
                              f"but the file holds {human_bytes(file_bytes)} of weights")
    return None


def check_layout(expected: dict, actual: dict, source: str, base: str) -> None:
    """CheckpointError unless the file's tensors (name -> (shape, dtype)) are exactly the architecture's."""
    missing = [k for k in expected if k not in actual]
    unexpected = [k for k in actual if k not in expected]
    wrong = [f"{k} is {actual[k][1]} {list(actual[k][0])} in the file, {e[1]} {list(e[0])} in the architecture"
             for k, e in expected.items() if k in actual and (tuple(actual[k][0]), actual[k][1]) != (tuple(e[0]), e[1])]
    parts = [f"{label}: {', '.join(clip(x, 120) for x in items[:3])}" + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")
             for label, items in (("missing", missing), ("unexpected", unexpected), ("different", wrong)) if items]
    if parts:
        raise CheckpointError(f"{source}: the tensors in the file do not fit {clip(base)}: " + "; ".join(parts))


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def layout(sd: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (tuple(v.shape), dtype_name(v.dtype)) for k, v in sd.items() if isinstance(v, torch.Tensor)}


def tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def count(module: nn.Module) -> tuple[int, int]:
    """(parameters, bytes of parameters and buffers) of a module, on any device (meta included)."""
    params = sum(p.numel() for p in module.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in itertools.chain(module.parameters(), module.buffers()))
    return params, nbytes


class _LargeOnMeta(TorchFunctionMode):
    """Tensors of more than 64K elements are created on the meta device, smaller ones as usual: for
    constructors that compute their configuration with tensors (torchvision's RegNet)."""

    SIZED = (torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.full)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self.SIZED and kwargs.get("device") is None:
            size = kwargs.get("size", args[0] if args and not is_int(args[0]) else args)
            if isinstance(size, (tuple, list, torch.Size)) and all(is_int(v) for v in size) and math.prod(size) > 65536:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def on_meta(build) -> nn.Module:
    """`build()` with every tensor on the meta device (nothing allocated)."""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build()
    except BadInput:
        raise
    except (NotImplementedError, RuntimeError):     # a constructor that reads tensor values
        with _LargeOnMeta(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build().to("meta")


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
