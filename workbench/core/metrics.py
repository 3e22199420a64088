"""Measurements of a model: parameters, non-zeros, per-layer sparsity, FLOPs, bytes, latency, accuracy.

Everything here is measured: FLOPs by `FlopCounter` (`torch.utils.flop_counter`'s formulas) on one sample,
latency by timing real forward passes, sizes from files on disk.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Sized
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry
from torch.utils.hooks import RemovableHandle

from .latency import denormals_flushed as denormals_flushed  # re-exported: an explicit alias (no_implicit_reexport)
from .latency import latency_stats

Batch = tuple[torch.Tensor, torch.Tensor]       # (inputs, labels), as data loaders yield them


@dataclass
class LayerInfo:
    """One module that owns parameters. `sparsity` is the fraction of zeros in its weight when it is a
    prunable layer (Linear or convolution, float or int8) and None otherwise; `flops` is None where
    FlopCounterMode cannot count the module's operations (int8 kernels)."""
    name: str
    type: str
    shape: list[int]
    params: int
    nonzero_params: int
    sparsity: float | None
    flops: int | None
    weights: int = 0              # prunable weights (0 for other layers)
    nonzero_weights: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "shape": list(self.shape)}      # flat: no deep copy as asdict makes


def layer_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a module owns directly: its parameters, or the unpacked weights of a quantized module."""
    tensors = {n: p.detach() for n, p in module.named_parameters(recurse=False)}
    if not tensors and callable(getattr(module, "weight", None)):  # torch.ao quantized Linear / Conv
        packed: Any = module             # weight() and bias() are methods there, not tensors
        try:
            w = packed.weight()
            tensors["weight"] = w.dequantize() if w.is_quantized else w
            b = packed.bias() if callable(getattr(module, "bias", None)) else None
            if b is not None:
                tensors["bias"] = b.detach()
        except Exception as exc:
            raise ValueError(f"cannot read the packed weights of {type(module).__name__}: {exc}") from exc
    return tensors


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters, by qualified name, in definition order."""
    return [(name, m) for name, m in model.named_modules() if layer_tensors(m)]


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, non-zero) over every parameter of the model, quantized weights included."""
    total = nonzero = 0
    for _, m in layer_modules(model):
        for t in layer_tensors(m).values():
            total += t.numel()
            nonzero += count_nonzero(t)
    return total, nonzero


class _Unusual(Exception):
    """An op `FlopCounter` leaves to `FlopCounterMode` (a higher-order op such as torch.cond)."""


class FlopCounter(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch's dispatch modes are untyped
    """FLOPs of the ops run under it, as `FlopCounterMode` counts them (its formulas: `flop_registry`; a
    composite op not in it decomposed to find the matrix products inside), credited to "Global" and to every
    module of `model` whose forward is running, by qualified name.

    Leaner than `FlopCounterMode`, whose overhead was a third of a resnet50 forward pass: it tries to decompose
    every op it cannot count (entering the mode again, even for relu or an addition), and tracks the module
    stack with global hooks. Here only ops with a composite kernel are decomposed (known per op, cached), and
    the module stack comes from hooks on `model`'s modules."""

    METADATA = frozenset(getattr(torch.ops.aten, n).default for n in (
        "sym_is_contiguous", "is_contiguous", "is_strides_like_format", "is_non_overlapping_and_dense", "size",
        "sym_size", "stride", "sym_stride", "storage_offset", "sym_storage_offset", "numel", "sym_numel", "dim")) \
        | {torch.ops.aten.is_contiguous.memory_format, torch.ops.prim.layout.default}
    NO_PRODUCTS = frozenset(getattr(torch.ops.aten, n) for n in (        # composites without matrix products inside:
        "batch_norm", "layer_norm", "group_norm", "instance_norm", "dropout", "feature_dropout"))  # run, not decomposed
    _composite: ClassVar[dict[Any, bool]] = {}
    supports_higher_order_operators = True      # they reach __torch_dispatch__, which leaves them to FlopCounterMode

    def __init__(self, model: nn.Module) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # torch's TorchDispatchMode is unannotated
        self.model = model
        self.stack: list[str] = []
        self.hooks: list[RemovableHandle] = []
        self.counts: dict[str, int] = defaultdict(int)

    def __enter__(self) -> FlopCounter:
        def leave(*_: object) -> None:
            self.stack.pop()
        for name, m in self.model.named_modules():
            if name:                     # the whole model: "Global"
                self.hooks += [m.register_forward_pre_hook(lambda *_, n=name: self.stack.append(n)),
                               m.register_forward_hook(leave, always_call=True)]
        super().__enter__()  # type: ignore[no-untyped-call]  # torch's TorchDispatchMode is unannotated
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)  # type: ignore[no-untyped-call]  # torch's TorchDispatchMode is unannotated
        for hook in self.hooks:
            hook.remove()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in self.METADATA:
            return NotImplemented
        if isinstance(func, torch._ops.HigherOrderOperator):
            raise _Unusual(str(func))
        formula = flop_registry.get(func._overloadpacket)
        if formula is None:
            if func._overloadpacket not in self.NO_PRODUCTS and self._decomposes(func):
                with self:
                    out = func.decompose(*args, **kwargs)
                if out is not NotImplemented:
                    return out
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        flops = int(formula(*args, **kwargs, out_val=out))
        self.counts["Global"] += flops
        for name in set(self.stack):
            self.counts[name] += flops
        return out

    @classmethod
    def _decomposes(cls, func: Any) -> bool:
        known = cls._composite.get(func)
        if known is None:
            known = cls._composite[func] = func is not torch.ops.prim.device.default and bool(
                torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), torch._C.DispatchKey.CompositeImplicitAutograd))
        return known


def flops_per_module(model: nn.Module, example: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward pass on `example`, in total and per qualified module name (`FlopCounter`)."""
    if isinstance(model, torch.jit.ScriptModule):     # no module hooks on TorchScript: torch's own counter
        return _flops_by_flop_counter_mode(model, example)
    was_training = model.training
    model.eval()
    try:
        try:
            with torch.no_grad(), FlopCounter(model) as counter:
                model(example)
            counts = dict(counter.counts)
        except _Unusual:
            return _flops_by_flop_counter_mode(model, example)
    finally:
        model.train(was_training)
    return counts.pop("Global", 0), counts


def _flops_by_flop_counter_mode(model: nn.Module, example: torch.Tensor) -> tuple[int, dict[str, int]]:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    counts = counter.get_flop_counts()
    total = int(sum(counts.get("Global", {}).values()))
    root = type(model).__name__
    per_module: dict[str, int] = {}
    for key, ops in counts.items():
        if key.startswith(root + "."):
            per_module[key[len(root) + 1:]] = int(sum(ops.values()))
    return total, per_module


def is_prunable(module: nn.Module, weight: torch.Tensor | None) -> bool:
    """Linear and convolution layers (float, fused or int8): the layers whose weights sparsity counts. A
    program loaded whole (`.pt2`) keeps its layers' names but not their classes (each is a plain `Module`):
    there every matrix or kernel counts."""
    if weight is None or weight.ndim < 2:
        return False
    return bool(_PRUNABLE_NAME.search(type(module).__name__)) or type(module) is nn.Module


_PRUNABLE_NAME = re.compile(r"Linear|Conv")


def _is_int8_module(module: nn.Module) -> bool:
    return not any(True for _ in module.parameters(recurse=False)) and callable(getattr(module, "weight", None))


_SIGN_BIT = np.int32(-2**31)      # the bits of -0.0 read as an int32


def count_nonzero(t: torch.Tensor) -> int:
    """Elements of `t` other than +0.0 and -0.0. A float32 tensor on the CPU is counted on its bits (numpy,
    about 3x faster than `torch.count_nonzero`), less its -0.0s (the sign bit alone: the smallest int32)."""
    if t.dtype != torch.float32 or t.device.type != "cpu" or t.requires_grad:
        return int(torch.count_nonzero(t))
    bits = t.numpy().view(np.int32)
    n = int(np.count_nonzero(bits))
    if n and bits.min() == _SIGN_BIT:
        n -= int(np.count_nonzero(bits == _SIGN_BIT))
    return n


def layer_table(model: nn.Module, example: torch.Tensor | None = None,
                flops: dict[str, int] | None = None) -> list[LayerInfo]:
    """One row per module that owns parameters. FLOPs per module: `flops` when the caller has counted them
    already (`flops_per_module`'s second value: the forward pass is not run again), else counted on `example`."""
    if flops is None:
        flops = flops_per_module(model, example)[1] if example is not None else {}
    rows = []
    for name, m in model.named_modules():
        tensors = layer_tensors(m)
        if not tensors:
            continue
        weight = tensors.get("weight", next(iter(tensors.values())))
        params = sum(t.numel() for t in tensors.values())
        nonzeros = {k: count_nonzero(t) for k, t in tensors.items()}     # each tensor read once
        nonzero = sum(nonzeros.values())
        prunable = is_prunable(m, tensors.get("weight"))
        weights = weight.numel() if prunable else 0
        nz_weights = nonzeros["weight"] if prunable else 0
        sparsity = (1.0 - nz_weights / weights if weights else 0.0) if prunable else None
        layer_flops = None if _is_int8_module(m) else flops.get(name, 0)
        rows.append(LayerInfo(name, type(m).__name__, list(weight.shape), params, nonzero, sparsity, layer_flops,
                              weights, nz_weights))
    return rows


def summarize(rows: Iterable[LayerInfo], flops_total: int | None = None) -> dict[str, Any]:
    """Totals. `sparsity` counts the prunable weights only (Linear and convolution weights); `flops` is None
    when any layer's operations cannot be counted (int8), never a partial sum that reads like a total."""
    rows = list(rows)
    params = sum(r.params for r in rows)
    nonzero = sum(r.nonzero_params for r in rows)
    weights = sum(r.weights for r in rows)
    nz_weights = sum(r.nonzero_weights for r in rows)
    countable = all(r.flops is not None for r in rows)
    flops = (flops_total if flops_total is not None else sum(r.flops or 0 for r in rows)) if countable else None
    return {
        "params": params,
        "nonzero_params": nonzero,
        "sparsity": 1.0 - nz_weights / weights if weights else 0.0,
        "weights": weights,
        "nonzero_weights": nz_weights,
        "flops": flops,
        "dense_bytes": params * 4,
    }


def is_quantized(model: nn.Module) -> bool:
    """Whether the model holds torch.ao int8 tensors (CPU only; cannot be trained or restructured)."""
    return any(getattr(t, "is_quantized", False) for t in model.state_dict().values())


def latency_ms(model: nn.Module, example: torch.Tensor, warmup: int = 5, repeats: int = 30,
               max_seconds: float = 5.0) -> float:
    """Median wall time in ms of one forward pass on `example`, under the tool's one thread policy
    (`core.latency`: `LATENCY_THREADS`, denormals flushed as inference runtimes do). The figure with its
    spread: `core.latency.latency_stats`."""
    return float(latency_stats(model, example, repeats, warmup, max_seconds)["median_ms"])


def accuracy(model: nn.Module, batches: Iterable[Batch], device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in [0, 1]."""
    steps = accuracy_steps(model, batches, device)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return float(done.value)


def accuracy_steps(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], batches: Iterable[Batch], device: str | torch.device = "cpu"
                   ) -> Generator[tuple[int, int | None], None, float]:
    """Top-1 accuracy in [0, 1] (the generator's return value), yielding (batches done, batches in all or None)
    after each batch, so a caller can show progress and stop between batches. `model` may be any callable from
    a batch to logits (an exported file's runtime)."""
    if isinstance(model, nn.Module):
        model.eval()
    correct = total = 0
    count: int | None = None
    if isinstance(batches, Sized):
        try:
            count = len(batches)
        except TypeError:                 # a DataLoader over an iterable data set has no length
            count = None
    for done, (x, y) in enumerate(batches, 1):
        with torch.inference_mode():      # entered per batch: the mode must not leak to the caller at a yield
            out = model(x.to(device))
            correct += int((out.argmax(1).cpu() == y).sum())
        total += len(y)
        yield done, count
    return correct / total if total else 0.0
