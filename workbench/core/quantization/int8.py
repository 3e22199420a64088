"""int8 that really runs int8 kernels on the CPU: torch.ao quantization (FX graph mode, x86 backend).

dynamic: Linear/LSTM/GRU weights stored as int8; activations quantized on the fly per batch.
static:  weights and activations int8, activation ranges calibrated on the data's calibration split;
         conv+bn+relu are fused, residual adds become quantized::add_relu.
qat:     fake-quantized training (prepare_qat_fx), then the same conversion as static.
Why torch.ao FX rather than PT2E or onnxruntime: see docs/architecture.md, "Quantization".

Each conversion registers a replayable transform, so a snapshot of an int8 model reloads: the
conversion is redone on a freshly built float model (observers uncalibrated) and the int8 state
dict (weights, scales, zero points) is loaded into it.
"""
from __future__ import annotations

import contextlib
import copy
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .. import transforms
from ..errors import CheckpointError, StageError

if TYPE_CHECKING:
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    from torch.fx import GraphModule, Node

BACKEND = "x86"
# torch.load(weights_only=True) of quantized tensors (snapshots, state_dict files) goes through torch's
# own TypedStorage path, which warns on every load; nothing a user can act on.
warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
DYNAMIC_TYPES = (nn.Linear, nn.LSTM, nn.GRU)


@contextlib.contextmanager
def ao_quiet(backend: str = BACKEND) -> Iterator[None]:
    """torch.ao is deprecated in favour of torchao (not installed); silence its warnings, pin the backend."""
    previous = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*_aminmax.*")
        torch.backends.quantized.engine = backend
        try:
            yield
        finally:
            torch.backends.quantized.engine = previous


def convert_dynamic(model: nn.Module, keep_float: Iterable[str] = ()) -> nn.Module:
    """Linear/LSTM/GRU weights int8, activations quantized per batch; the layers named in `keep_float` stay float."""
    found = [type(m).__name__ for m in model.modules() if isinstance(m, DYNAMIC_TYPES)]
    if not found:
        kinds = sorted({type(m).__name__ for m in model.modules() if any(True for _ in m.parameters(recurse=False))})
        raise StageError(f"int8_dynamic quantizes Linear/LSTM/GRU layers only; this model has none "
                          f"(its layers: {', '.join(kinds) or 'none'}); use int8_static")
    from torch.ao.quantization import quantize_dynamic
    with ao_quiet():
        keep = set(keep_float)
        spec: set[Any] = ({n for n, m in model.named_modules() if isinstance(m, DYNAMIC_TYPES) and n not in keep}
                          if keep else set(DYNAMIC_TYPES))
        quantized: nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]  # torch.ao's quantize_dynamic is unannotated
            copy.deepcopy(model).eval(), spec, dtype=torch.qint8)
        return quantized


_TRACE_LOCK = transforms.TRACE_LOCK   # FX graph work, one thread at a time (see _traced)


@contextlib.contextmanager
def _own_thread_tracer() -> Iterator[None]:
    """prepare_fx's tracer traces its own thread only (transforms.OwnThreadTracer); under _TRACE_LOCK."""
    from torch.ao.quantization import quantize_fx
    from torch.ao.quantization.fx.tracer import QuantizationTracer

    class OwnThreadQuantizationTracer(transforms.OwnThreadTracer, QuantizationTracer):
        pass

    original = quantize_fx.QuantizationTracer
    quantize_fx.QuantizationTracer = OwnThreadQuantizationTracer  # type: ignore[misc]  # the name prepare_fx reads
    try:
        yield
    finally:
        quantize_fx.QuantizationTracer = original  # type: ignore[misc]


def _traced(fn: Callable[..., GraphModule], model: nn.Module, mapping: QConfigMapping, example: tuple[torch.Tensor, ...],
            custom: PrepareCustomConfig | None = None) -> GraphModule:
    try:
        with _TRACE_LOCK, _own_thread_tracer(), ao_quiet():    # FX tracing patches torch for every thread
            return fn(model, mapping, example, prepare_custom_config=custom)
    except Exception as exc:  # noqa: BLE001 - FX tracing errors name the Python construct or op
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise StageError(f"int8: cannot trace the model into a graph for quantization ({type(exc).__name__}: {first})") from None


def prepare_static(model: nn.Module, example: torch.Tensor, qat: bool = False,
                   keep_float: Iterable[str] = ()) -> nn.Module:
    """Insert observers (static) or fake-quantize modules (qat) into a copy of the float model; the layers
    named in `keep_float` stay float (the per-layer fallback)."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx, prepare_qat_fx
    fn, mapping = (prepare_qat_fx, get_default_qat_qconfig_mapping(BACKEND)) if qat else (prepare_fx, get_default_qconfig_mapping(BACKEND))
    for name in keep_float:
        mapping.set_module_name(name, None)
    copied = copy.deepcopy(model).cpu()
    try:
        return _traced(fn, copied.train(qat), mapping, (example,))
    except StageError:
        notrace = _timm_notrace(model)
        if not notrace:
            raise
    # timm's own list of modules FX cannot trace (shape-dependent padding, positional encodings reading a weight's
    # device, ...): kept as float leaves. Only as a retry, as the list also holds modules that trace and quantize.
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    for cls in notrace:                    # float inside too: a quantized child would lose the float `.weight` they read
        mapping.set_object_type(cls, None)
    custom = PrepareCustomConfig().set_non_traceable_module_classes(notrace)
    return _traced(fn, copy.deepcopy(model).cpu().train(qat), mapping, (example,), custom)


def _timm_notrace(model: nn.Module) -> list[type[nn.Module]]:
    """timm's non-traceable module classes that `model` uses (none for a model without timm layers)."""
    if not any(type(m).__module__.startswith("timm.") for m in model.modules()):
        return []
    from timm.layers import get_notrace_modules
    used = {type(m) for m in model.modules()}
    notrace: list[type[nn.Module]] = get_notrace_modules()  # type: ignore[no-untyped-call]  # timm's function is unannotated
    return [cls for cls in notrace if cls in used]


def calibrate(prepared: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], limit: int) -> Iterator[int]:
    """Run calibration batches through the observers; yields the number done."""
    prepared.eval()
    with torch.inference_mode(), ao_quiet():
        for i, (x, _) in enumerate(batches):
            if i >= limit:
                break
            prepared(x.cpu())
            yield i + 1


def convert(prepared: nn.Module) -> nn.Module:
    """`prepared`: what `prepare_static` returned (a GraphModule), calibrated or trained."""
    from torch.ao.quantization.quantize_fx import convert_fx
    with _TRACE_LOCK, ao_quiet():
        return convert_fx(cast("GraphModule", prepared.eval()))


_UNSUPPORTED = re.compile(r"Could not run '([^']+)' with arguments from the '(\w+)' backend")


def check_runs(model: nn.Module, example: torch.Tensor) -> None:
    """Run the int8 model once; an op without an int8 kernel becomes a StageError naming it."""
    try:
        with torch.inference_mode(), ao_quiet():
            model(example.cpu())
    except (NotImplementedError, RuntimeError) as exc:
        m = _UNSUPPORTED.search(str(exc))
        if m:
            raise StageError(f"int8: operator {m.group(1)} has no kernel for {m.group(2)} tensors; "
                              f"exclude the layer that uses it or use int8_dynamic") from None
        raise StageError(f"int8 model does not run: {str(exc).splitlines()[0][:200]}") from None


def _quantized_output(node: Node, named: dict[str, nn.Module], is_float: dict[Node, bool]) -> bool:
    """Whether an FX node of a converted graph yields a quantized tensor."""
    target = node.target
    if node.op == "call_method" and target == "dequantize":
        return False
    if node.op == "call_function" and getattr(target, "__name__", "").startswith("quantize_per"):
        return True
    if node.op == "call_module" and isinstance(target, str) and type(named[target]).__module__.startswith("torch.ao.nn.quantized"):
        return True
    if node.op == "call_function" and str(getattr(target, "__module__", "") or "").startswith("torch._ops.quantized"):
        return True
    inputs = [a for a in node.all_input_nodes if a in is_float]
    return bool(inputs) and not all(is_float[a] for a in inputs)     # views, pooling: follow their input


def float_islands(model: nn.Module) -> list[str]:
    """Compute ops of a converted FX graph that take float inputs, i.e. have no int8 kernel here."""
    graph = getattr(model, "graph", None)
    if graph is None:
        return []
    named = dict(model.named_modules())
    is_float: dict[Node, bool] = {}
    out = []
    for node in graph.nodes:
        if node.op == "placeholder":
            is_float[node] = True
        elif node.op in ("call_module", "call_function", "call_method"):
            quantized = _quantized_output(node, named, is_float)
            is_float[node] = not quantized
            plumbing = node.target == "dequantize" or getattr(node.target, "__name__", "").startswith("quantize_per")
            inputs = [a for a in node.all_input_nodes if a in is_float]
            if not plumbing and inputs and all(is_float[a] for a in inputs):
                what = type(named[node.target]).__name__ if node.op == "call_module" else getattr(node.target, "__name__", str(node.target))
                out.append(f"{node.name} ({what})")
    return out


def int8_weight_bytes(model: nn.Module) -> int:
    """Bytes of int8 weights held by the model's quantized layers (a check that the weights really are int8)."""
    total = 0
    for v in model.state_dict().values():
        tensors = v if isinstance(v, tuple) else (v,)
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.dtype in (torch.qint8, torch.quint8):
                total += t.numel()
    return total


def _float_layers(t: dict[str, Any]) -> list[str]:
    """The layers a per-layer fallback kept float (a record read from a file: checked)."""
    names = t.get("float_layers", [])
    if not isinstance(names, list) or len(names) > 100_000 or \
            not all(isinstance(n, str) and 0 < len(n) <= 1000 for n in names):
        raise CheckpointError(f"workbench record: {t.get('op')} float_layers: expected a list of layer names")
    return names


def _replay_dynamic(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    return convert_dynamic(model, _float_layers(t))


def _replay_static(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    example = torch.zeros(1, *t["input_shape"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert(prepare_static(model, example, keep_float=_float_layers(t)))


transforms.register("int8_dynamic")(_replay_dynamic)
transforms.register("int8_static")(_replay_static)
transforms.register("qat")(_replay_static)
