"""What the layer inspector shows, as numpy arrays: weights, masks, codebooks, a down-sampled heat map.

The GUI calls these from a worker thread and hands only the returned arrays to its GUI thread.
Loaded models are cached by spec (one lock), so the browser, the inspector and the export dialog
share one load of a big model instead of rebuilding it each time.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import metrics
from .data import DataSettings
from .models import LoadedModel
from .specs import check_fits, load_model, preprocess_of

HEAT_MAX = 256  # heat maps larger than this on a side are down-sampled by block maxima
BINS = 80
DISTINCT_MAX = 5_000_000  # count distinct values only up to this many weights


class ModelCache:
    """A few loaded models by spec; `put` lets a caller share a model it already loaded. The options a spec
    was opened with (`arch` for a bare state dict, `trust`, the data's input shape and classes) are remembered,
    so a reload after eviction loads the same model the same way."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self._items: OrderedDict[str, LoadedModel] = OrderedDict()
        self._options: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, spec: str, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None) -> LoadedModel:
        with self._lock:
            if spec in self._items:
                self._items.move_to_end(spec)
                return self._items[spec]
            remembered = dict(self._options.get(spec, {}))
        options = dict(remembered)
        sized = {k: options.pop(k, None) for k in ("input_shape", "num_classes")}     # the data it was opened on
        loaded = load_model(spec, input_shape or sized["input_shape"], num_classes or sized["num_classes"], **options,
                            keep_init=False)     # browsed, never rewound: no copy of its initial weights
        self.put(spec, loaded, remembered)
        return loaded

    def put(self, spec: str, loaded: LoadedModel, options: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._items[spec] = loaded
            self._items.move_to_end(spec)
            if options:
                self._options[spec] = {k: v for k, v in options.items() if v}
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = ModelCache()


@dataclass
class LayerArrays:
    name: str
    type: str
    shape: list[int]
    hist_counts: np.ndarray               # histogram of the non-zero weights
    hist_edges: np.ndarray
    zeros: int                            # weights exactly zero (pruned), drawn as their own bar
    mask_kept: int | None                 # weights the pruning mask keeps (None: no mask recorded)
    codebook: np.ndarray | None           # cluster centroids, when weight sharing was applied
    heat: np.ndarray                      # 2-D magnitudes (matrix, or per-filter norms for convolutions)
    heat_pruned: np.ndarray               # 2-D bool, True where every weight behind the cell is zero
    heat_label: str
    downsampled: bool
    numbers: dict[str, Any] = field(default_factory=dict)


def _block_reduce(a: np.ndarray, limit: int, fn: Callable[..., np.ndarray]) -> tuple[np.ndarray, bool]:
    rows, cols = a.shape
    fr, fc = max(1, -(-rows // limit)), max(1, -(-cols // limit))
    if fr == 1 and fc == 1:
        return a, False
    pr, pc = (-rows) % fr, (-cols) % fc
    padded = np.pad(a, ((0, pr), (0, pc)), constant_values=a.min() if fn is np.max else True)
    blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
    return fn(blocks, axis=(1, 3)), True


def heat_map(weight: np.ndarray, limit: int = HEAT_MAX) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """(magnitudes, pruned cells, label, down-sampled?) for a weight tensor of any rank."""
    if weight.ndim >= 3:   # convolution: L2 norm of each (output, input) kernel
        flat = weight.reshape(weight.shape[0], weight.shape[1], -1)
        mag = np.sqrt((flat.astype(np.float64) ** 2).sum(-1)).astype(np.float32)
        label = "filter L2 norm (out × in ch.)"
    elif weight.ndim == 2:
        mag = np.abs(weight)
        label = "|w| (out × in)"
    else:
        mag = np.abs(weight.reshape(1, -1))
        label = "|weight|"
    zero = mag == 0
    mag_small, down = _block_reduce(mag, limit, np.max)
    zero_small, _ = _block_reduce(zero, limit, np.all)
    return mag_small, zero_small.astype(bool), label, down


def layer_arrays(loaded: LoadedModel, layer: str) -> LayerArrays:
    """The arrays and numbers of one layer (a module that owns parameters) of a loaded model."""
    modules = dict(loaded.module.named_modules())
    if layer not in modules:
        raise KeyError(f"{loaded.spec}: no layer named {layer!r}")
    module = modules[layer]
    tensors = metrics.layer_tensors(module)
    if not tensors:
        raise KeyError(f"{layer}: owns no parameters")
    key = "weight" if "weight" in tensors else next(iter(tensors))
    w = tensors[key].detach().float().cpu().numpy()
    pname = f"{layer}.{key}" if layer else key
    masks = loaded.state.get("masks", {}) if loaded.state else {}
    books = loaded.state.get("codebooks", {}) if loaded.state else {}
    kept = int(masks[pname].detach().bool().sum()) if pname in masks else None
    book = books[pname].detach().float().cpu().numpy().reshape(-1) if pname in books else None
    heat, pruned, label, down = heat_map(w)
    flat = w.reshape(-1)
    nonzero_w = flat[flat != 0]
    lo, hi = (float(nonzero_w.min()), float(nonzero_w.max())) if nonzero_w.size else (-1.0, 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(nonzero_w, bins=BINS, range=(lo, hi))
    total = sum(t.numel() for t in tensors.values())
    nonzero = sum(int(torch.count_nonzero(t)) for t in tensors.values())
    numbers = {"params": total, "nonzero_params": nonzero, "sparsity": 1.0 - nonzero / total if total else 0.0,
               "weight_min": float(w.min()) if w.size else 0.0, "weight_max": float(w.max()) if w.size else 0.0,
               "weight_std": float(w.std()) if w.size else 0.0,
               "distinct_values": int(np.unique(flat).size) if flat.size <= DISTINCT_MAX else None}
    if book is not None:
        numbers["clusters"] = int(book.size)
    numbers.update(int8_numbers(module))
    return LayerArrays(layer, type(module).__name__, list(w.shape), counts, edges, int(flat.size - nonzero_w.size),
                       kept, book, heat, pruned, label, down, numbers)


def int8_numbers(module: torch.nn.Module) -> dict[str, Any]:
    """A torch.ao int8 layer's quantization: its weights' scales (one per output channel, or one for the tensor)
    and zero points; {} for a float layer. The histogram shows the dequantized values (scale × (q - zero point))."""
    packed = getattr(module, "weight", None)
    if not callable(packed):
        return {}
    try:
        w = packed()
    except Exception:  # noqa: BLE001 - a module whose weight() is not the packed int8 weight: nothing to add
        return {}
    if not isinstance(w, torch.Tensor) or not w.is_quantized:
        return {}
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scales = w.q_per_channel_scales().double().numpy()
        zero_points = w.q_per_channel_zero_points().numpy()
    else:
        scales, zero_points = np.array([w.q_scale()]), np.array([w.q_zero_point()])
    return {"int8_dtype": str(w.dtype).removeprefix("torch."), "int8_scales": int(scales.size),
            "int8_scale_min": float(scales.min()), "int8_scale_max": float(scales.max()),
            "int8_zero_points": sorted({int(z) for z in zero_points.reshape(-1)})[:8]}


def open_model(spec: str, data_spec: str | dict[str, Any] | DataSettings | None = None, arch: str | None = None,
               trust: bool = False, replace_head: bool = False) -> dict[str, Any]:
    """Load a model for browsing (sized by the data when it fits) and measure it like `workbench inspect`. The data
    is a spec or the whole data settings (image size, preprocessing, workers, ...), the ones runs get.

    Returns inspect's dict plus "module_types" ({qualified name: class name} for every module) and
    "warning" (why the data was not used, or "").
    """
    from .data import load_data, spec_text
    from .errors import BadInput
    from .inspection import inspect_loaded

    data, warning, loaded = None, "", None
    if data_spec:
        data = load_data(data_spec, preprocess=preprocess_of(spec))
        loaded = load_model(spec, data.input_shape, data.num_classes, arch=arch, trust=trust, keep_init=False,
                            replace_head=replace_head)    # a head for other classes: HeadMismatch unless replace_head
        try:
            check_fits(loaded.module, data, spec)
        except BadInput as exc:
            warning, data, loaded = f"measured without {spec_text(data_spec)}: {exc.message}", None, None
    if loaded is None:
        loaded = load_model(spec, arch=arch, trust=trust, keep_init=False)
    shape = {"input_shape": data.input_shape, "num_classes": data.num_classes} if data is not None else {}
    CACHE.put(spec, loaded, {"arch": arch, "trust": trust, "replace_head": replace_head, **shape})
    info = inspect_loaded(loaded, data)
    info["module_types"] = {name: type(m).__name__ for name, m in loaded.module.named_modules()}
    info["warning"] = warning
    return info
