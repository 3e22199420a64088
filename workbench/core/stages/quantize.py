"""`quantize`: fewer bits per weight: k-means sharing, binary/ternary, int8 (dynamic, static, QAT), fp16/bf16.

The algorithms live in `core/quantization/`; this module maps recipe settings onto them.
"""
from __future__ import annotations

import copy
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import BadInput, StageError
from ..events import Event, LayerStats, Log, Progress
from ..params import param
from ..quantization import agreement, binary, floats, int8
from ..quantization.kmeans import INITS, MAX_ITER
from ..quantization.layers import WeightLayer, bits_for, bits_layer_names, check_layer_names, weight_layers
from ..quantization.sharing import round_biases, round_codebooks, share_layer
from ..quantization.tied import Producer, tied_fit, write_back
from ..training import OPTIMIZERS, fit
from . import INT8 as INT8_STATE
from . import StageKind, register

if TYPE_CHECKING:
    from ..session import Session

KIND = "quantize"
DESCRIPTION = ("Fewer bits per weight: k-means weight sharing (2^bits shared values per layer), binary or "
               "ternary weights, int8 that runs int8 kernels on the CPU, or fp16/bf16 storage.")
METHODS = ["kmeans", "binary", "ternary", "int8_dynamic", "int8_static", "qat", "fp16", "bf16"]
INT8 = ("int8_dynamic", "int8_static", "qat")


@dataclass
class Params:
    method: str = param("kmeans", "kmeans: weight sharing; binary/ternary: 1-2 bit weights with a per-channel scale; "
                        "int8_*: int8 kernels on the CPU; qat: quantization-aware training; fp16/bf16: 16-bit floats.",
                        choices=METHODS)
    bits: int | dict[str, int] = param({"conv": 8, "linear": 5}, "k-means bits per weight (2^bits centroids): one "
                                       "number, or per layer type (conv, linear) and per layer name.", min=1, max=8,
                                       when={"method": "kmeans"})
    init: str = param("linear", "k-means initialisation: linear (between min and max), density (CDF quantiles), "
                      "random (picked weights).", choices=INITS, when={"method": "kmeans"})
    finetune_epochs: int = param(0, "Fine-tuning epochs: centroids (kmeans), latent weights (binary, ternary) "
                                 "or fake-quantized training (qat, at least 1).", min=0, max=1000)
    lr: float = param(1e-4, "Fine-tuning learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-5)
    optimizer: str = param("adam", "Fine-tuning optimiser.", choices=OPTIMIZERS)
    batch_size: int = param(64, "Fine-tuning samples per step.", min=1, max=4096)
    exclude: list[str] = param([], "Layers left in float (kmeans, binary, ternary).", layers=True,
                               when={"method": ["kmeans", "binary", "ternary"]})
    codebook: str = param("float32", "Precision of the stored k-means centroids.", choices=["float32", "float16"],
                          advanced=True, when={"method": "kmeans"})
    biases: str = param("float32", "k-means: precision of the clustered layers' biases (float16 halves their size "
                        "in the packed file).", choices=["float32", "float16"], advanced=True,
                        when={"method": "kmeans"})
    calib_batches: int = param(8, "Calibration batches for int8_static.", min=1, max=10000, advanced=True,
                               when={"method": ["int8_static", "qat"]})
    min_agreement: float = param(0.9, "int8: the least top-1 agreement with the float model on val that the stage "
                                 "accepts (0: not checked); below it the stage fails naming the layers to blame.",
                                 min=0.0, max=1.0, step=0.01, when={"method": list(INT8)})
    fallback: bool = param(False, "int8: below min_agreement, keep the most sensitive layers (measured on val) in "
                           "float until it is reached, instead of failing.", advanced=True,
                           when={"method": ["int8_static", "int8_dynamic"]})
    max_iter: int = param(MAX_ITER, "k-means Lloyd iterations at most (it stops earlier, at convergence).",
                          min=1, max=MAX_ITER, advanced=True,
                          when={"method": "kmeans"})


def preflight(session: Session, p: Params) -> None:
    path = f"stages[{session.stage_index}]"
    check_layer_names(session.model, bits_layer_names(p.bits), f"{path}.bits")
    for i, name in enumerate(p.exclude):
        if name not in dict(session.model.named_modules()):
            raise BadInput(f"{path}.exclude[{i}]: no layer named {name!r} in the model")
    if p.method in INT8 and session.device.type != "cpu":
        raise BadInput(f"{path}.method: {p.method} produces int8 kernels that run on the CPU only; run with --device cpu")


def _keep_masks(session: Session, layers: dict[str, WeightLayer]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, module in layers.items():
        param_name = f"{name}.weight"
        keep = module.weight.detach() != 0
        mask = session.masks.get(param_name)
        if mask is not None and mask.shape == keep.shape:
            keep &= mask.to(keep.device, torch.bool)
        out[param_name] = keep
    return out


def _kmeans(session: Session, p: Params) -> Iterator[Event]:
    layers = weight_layers(session.model, p.exclude)
    keeps = _keep_masks(session, layers)
    shared = {}
    for i, (name, module) in enumerate(layers.items()):
        yield Progress(i, len(layers), f"k-means {name}")
        pname = f"{name}.weight"
        layer = share_layer(pname, module.weight, keeps[pname], bits_for(name, module, p.bits), p.init,
                            session.seed, p.max_iter)
        with torch.no_grad():
            module.weight.copy_(layer.weight())
        shared[pname] = layer
        yield LayerStats({name: {"bits": layer.bits, "clusters": int(layer.codebook.numel()), "kept": layer.kept,
                                 "iterations": layer.iterations}})
    if p.finetune_epochs:
        books = {n: nn.Parameter(layer.codebook.clone()) for n, layer in shared.items()}
        produce: dict[str, Producer] = {n: partial(layer.weight, books[n]) for n, layer in shared.items()}
        yield from tied_fit(session, produce, books.values(), p.finetune_epochs, p.lr, p.optimizer, p.batch_size,
                            label="quantize")
        for n, layer in shared.items():
            layer.codebook = books[n].detach().clone()
    if p.codebook == "float16":
        round_codebooks(session.model, shared, torch.float16)
    if p.biases == "float16":
        round_biases(layers, torch.float16)
    session.codebooks.update({n: layer.codebook.detach().cpu() for n, layer in shared.items()})
    session.note(kind=KIND, method="kmeans", bits=p.bits, init=p.init, finetune_epochs=p.finetune_epochs,
                 layers={n: {"bits": layer.bits, "clusters": int(layer.codebook.numel())} for n, layer in shared.items()})
    yield Log("info", "k-means: " + ", ".join(f"{n} {layer.codebook.numel()} centroids" for n, layer in shared.items()))


def _binary(session: Session, p: Params) -> Iterator[Event]:
    quantizer = binary.QUANTIZERS[p.method]
    layers = weight_layers(session.model, p.exclude)
    keeps = _keep_masks(session, layers)
    latents = {f"{n}.weight": nn.Parameter(m.weight.detach().clone()) for n, m in layers.items()}
    produce: dict[str, Producer] = {n: partial(binary.straight_through, lat, keeps[n], quantizer)
                                    for n, lat in latents.items()}
    write_back(session.model, produce)
    yield Progress(1, 1, f"{p.method} weights")
    if p.finetune_epochs:
        yield from tied_fit(session, produce, latents.values(), p.finetune_epochs, p.lr, p.optimizer, p.batch_size,
                            label="quantize")
    for n in produce:
        session.codebooks.pop(n, None)
    session.note(kind=KIND, method=p.method, finetune_epochs=p.finetune_epochs, layers=sorted(layers))


def _convert(session: Session, p: Params, source: nn.Module, keep: list[str]) -> Generator[Event, None, nn.Module]:
    """One int8 conversion of `source` (the layers in `keep` left float); qat trains first."""
    example = session.example_input(1).cpu()
    if p.method == "int8_dynamic":
        yield Progress(0, 1, "int8 dynamic conversion")
        return int8.convert_dynamic(source, keep)
    prepared = int8.prepare_static(source, example, qat=p.method == "qat", keep_float=keep)
    if p.method == "qat":
        session.set_model(prepared)
        yield from fit(session, max(1, p.finetune_epochs), p.lr, p.optimizer, batch_size=p.batch_size, label="qat")
        prepared = session.model
    for done in int8.calibrate(prepared, session.data.calib, p.calib_batches):
        yield Progress(done, p.calib_batches, "calibrating activation ranges")
    return int8.convert(prepared)


def _val_batches(session: Session) -> Any:
    return session.data.val if session.data.splits["val"] else session.data.calib


def _checked(session: Session, p: Params, source: nn.Module, model: nn.Module
             ) -> Generator[Event, None, tuple[nn.Module, float, list[str]]]:
    """(model, top-1 agreement with `source` on val, layers kept float): fails the stage below min_agreement,
    or with `fallback` keeps the layers that add the most error in float, one more at a time, until it is met."""
    agree = agreement.agreement(source, model, _val_batches(session))
    if not p.min_agreement or agree >= p.min_agreement:
        return model, agree, []
    errors = agreement.layer_errors(source, model, _val_batches(session))
    ranked = agreement.blame(errors, most=len(errors))
    if not p.fallback or p.method == "qat":
        worst = ", ".join(f"{n} (adds {e:.3f} relative output error)" for n, e in ranked[:3]) or "none measurable"
        hint = "lower min_agreement or calibrate on more batches" if p.method == "qat" else \
            "set fallback: true to keep them in float, lower min_agreement, or calibrate on more batches"
        raise StageError(f"{p.method}: top-1 agreement with the float model on val is {agree:.3f}, below "
                         f"min_agreement {p.min_agreement:g}; layers to blame: {worst}; {hint}")
    keep: list[str] = []
    for name, _ in ranked:
        keep.append(name)
        yield Log("info", f"{p.method}: agreement {agree:.3f} < {p.min_agreement:g}; keeping {name} in float")
        model = yield from _convert(session, p, source, keep)
        agree = agreement.agreement(source, model, _val_batches(session))
        if agree >= p.min_agreement:
            return model, agree, keep
    raise StageError(f"{p.method}: top-1 agreement {agree:.3f} stays below min_agreement {p.min_agreement:g} "
                     f"even with {', '.join(keep)} kept in float")


def _int8(session: Session, p: Params) -> Iterator[Event]:
    example = session.example_input(1).cpu()
    source = copy.deepcopy(session.model).cpu().eval()          # the stage input, for the agreement check
    model = yield from _convert(session, p, source, [])
    int8.check_runs(model, example)
    model, agree, kept = yield from _checked(session, p, source, model)
    transform: dict[str, Any] = {"op": p.method}
    if p.method != "int8_dynamic":
        transform.update(backend=int8.BACKEND, input_shape=list(session.record["input_shape"]))
    if kept:
        transform["float_layers"] = kept
        yield Log("warning", f"{p.method}: kept in float to reach agreement {agree:.3f}: {', '.join(kept)}")
    islands = int8.float_islands(model)
    if islands:
        yield Log("warning", f"{p.method}: these ops have no int8 kernel and run in float: {', '.join(islands[:8])}")
    session.set_model(model, transform)
    session.codebooks.clear()
    session.note(kind=KIND, method=p.method, backend=int8.BACKEND, int8_weights=int8.int8_weight_bytes(model),
                 float_ops=islands, agreement=agree, **({"float_layers": kept} if kept else {}))
    yield Log("info", f"{p.method}: top-1 agreement with the float model on val {agree:.3f}")
    yield Progress(1, 1, f"{p.method}: {int8.int8_weight_bytes(model):,} int8 weights")


def _float16(session: Session, p: Params) -> Iterator[Event]:
    dtype = floats.DTYPES[p.method]
    session.set_model(floats.cast_model(session.model, dtype), {"op": "cast", "dtype": str(dtype).removeprefix("torch.")})
    session.codebooks = {k: v.to(dtype).float() for k, v in session.codebooks.items()}
    session.note(kind=KIND, method=p.method)
    yield Progress(1, 1, f"cast to {p.method}")


def run(session: Session, p: Params) -> Iterator[Event]:
    if p.method == "kmeans":
        yield from _kmeans(session, p)
    elif p.method in binary.QUANTIZERS:
        yield from _binary(session, p)
    elif p.method in INT8:
        yield from _int8(session, p)
    else:
        yield from _float16(session, p)


def leaves(p: Params, state: str, runtime: str = "eager") -> str:
    """The order check: the int8 methods leave a torch.ao int8 model."""
    return INT8_STATE if p.method in INT8 else state


STAGE = register(StageKind(kind=KIND, title="Quantize", description=DESCRIPTION, params=Params, run=run,
                           preflight=preflight, leaves=leaves))
