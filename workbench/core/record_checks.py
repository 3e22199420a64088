"""Checks of a model record before anything is built from it.

A record (`{"base", "input_shape", "num_classes", "transforms", ...}`) comes from a file: a safetensors
header, a packed header, a snapshot's `snapshot.json`. `check_record` validates its structure and types;
`check_layout` compares the tensors a (meta-device) architecture expects with those a file holds; `on_meta`
builds a model without allocating, so its size can be refused before it is built for real.
"""
from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import limits, transforms
from .errors import BadInput, CheckpointError
from .limits import clip, int_in, is_int, shape_problem, short

OPTIONAL_FIELDS = ("preprocess", "classes")   # what a model's weights say about its inputs and outputs


def _named(source: str, message: str) -> str:
    return message if message.startswith(source) else f"{source}: {message}"


def _why(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:160] if lines else ''}"


def _list_of(ok: Callable[[Any], bool], value: Any) -> bool:
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
TRANSFORM_FIELDS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {       # op -> {required field: (check, what it should be)}
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


def check_record(record: Any, source: str) -> dict[str, Any]:
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


Layout = dict[str, tuple[tuple[int, ...], str]]      # tensor name -> (shape, dtype name)


def check_layout(expected: Layout, actual: Layout, source: str, base: str) -> None:
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


def layout(sd: dict[str, Any]) -> Layout:
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

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in self.SIZED and kwargs.get("device") is None:
            size = kwargs.get("size", args[0] if args and not is_int(args[0]) else args)
            if isinstance(size, (tuple, list, torch.Size)) and all(is_int(v) for v in size) and math.prod(size) > 65536:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


class _NoInitOnMeta(TorchFunctionMode):
    """In-place initialisations of meta tensors skipped (they have no values to set): a meta build spends most of
    its time dispatching them (resnet50: 45 -> 20 ms)."""

    INIT = {getattr(torch.Tensor, n) for n in ("uniform_", "normal_", "fill_", "zero_", "exponential_", "random_",
                                               "bernoulli_", "erfinv_", "clamp_", "mul_", "add_", "copy_")}

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if func in self.INIT and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` with every tensor on the meta device (nothing allocated)."""
    try:
        with torch.device("meta"), _NoInitOnMeta(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build()
    except BadInput:
        raise
    except (NotImplementedError, RuntimeError):     # a constructor that reads tensor values
        with _LargeOnMeta(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build().to("meta")


