"""Memory estimates made before anything large is allocated, checked against a budget.

A spec or a recipe of a few bytes can ask for gigabytes: a wide `arch:` model, `image_size: 4096` with a
big batch, 64 loader processes. Each is estimated from shapes alone (the model built and run on PyTorch's
meta device, the data's sizes and settings) and compared with the memory budget: the memory available on
this machine, unless `--memory-budget SIZE` or WORKBENCH_MEMORY_BUDGET says otherwise (under torchrun each
local process gets its share). Over budget is a one-line BadInput (exit 2) giving the estimate, its parts
and the budget. The checks, from the cheapest and earliest:

    model_problem   every arch: / torchvision: / timm: build and record rebuild (models.py), on the meta device:
                    the weights plus a second copy (the initial weights kept for rewinding, or the file's tensors)
    check_data      every data set, when its DataBundle is made, before its first batch: the tensors it holds,
                    its largest batch and the batches its loader processes prefetch
    check_run       a model meeting its data (the runner before stage 0, `inspect --data`): the above plus
                    activations at the batch sizes used and, for a run, gradients and Adam's two moments
"""
from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from . import limits
from .errors import BadInput
from .limits import human_bytes, short
from .record_checks import count, tensor_bytes

if TYPE_CHECKING:                      # above this module: for annotations only
    from .data import DataBundle
    from .models import LoadedModel

ENV = "WORKBENCH_MEMORY_BUDGET"
_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*(?:([kmgt])(i?))?b?", re.I)
_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}
_from_flag = False      # the budget in ENV came from --memory-budget (said so in messages)


def parse_size(text: Any, what: str = "--memory-budget") -> int:
    """Bytes of a size such as `8G`, `512M`, `1.5GB`, `2GiB` or `1000000` (K, M, G, T are powers of 1000,
    KiB, MiB, GiB, TiB of 1024); BadInput naming `what` otherwise."""
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise BadInput(f"{what}: expected a size such as 8G, 512M or 2GiB, got {short(text)}")
    value = float(m[1]) * (1024 if m[3] else 1000) ** _POWER.get((m[2] or "").lower(), 0)
    if not limits.MIN_MEMORY_BUDGET <= value <= limits.MAX_MEMORY_BUDGET:
        raise BadInput(f"{what}: must be between {human_bytes(limits.MIN_MEMORY_BUDGET)} and "
                       f"{human_bytes(limits.MAX_MEMORY_BUDGET)}, got {short(text)}")
    return int(value)


def set_budget(text: str | None) -> None:
    """The command line's `--memory-budget`: checked, then put in the environment, so the processes a command
    starts (torchrun's ranks, the GUI's runs) keep it."""
    global _from_flag
    if text is None:
        return
    parse_size(text)
    os.environ[ENV] = str(text).strip()
    _from_flag = True


def _cgroup_room() -> int | None:
    """What a cgroup v2 memory limit (a container) leaves this process, where one is set."""
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as fh:
            top = fh.read(64).strip()
        if top == b"max":
            return None
        with open("/sys/fs/cgroup/memory.current", "rb") as fh:
            return max(0, int(top) - int(fh.read(64).strip()))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Memory this machine can give without swapping: MemAvailable in /proc/meminfo, else psutil's
    figure, else the free pages (os.sysconf); the smaller of that and a container's limit. None if unknown."""
    found = None
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh.read(1 << 16).splitlines():
                if line.startswith(b"MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            import psutil  # optional
            found = int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - not installed, or no figure on this system
            try:
                found = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
            except (ValueError, OSError, AttributeError):
                return None
    room = _cgroup_room()
    return found if room is None else min(found, room)


def budget() -> tuple[int | None, str]:
    """(bytes, where they come from) of the memory budget of this process; (None, ...) when unknown."""
    text = os.environ.get(ENV, "").strip()
    nbytes: int | None
    if text:
        nbytes = parse_size(text, ENV)
        source = f"--memory-budget {limits.clip(text, 40)}" if _from_flag else f"{ENV}={limits.clip(text, 40)}"
    else:
        nbytes = available_memory()
        source = "the memory available now; change it with --memory-budget SIZE"
    share = _local_processes()
    if nbytes is not None and share > 1:
        nbytes //= share
        source += f", shared by {share} processes"
    return nbytes, source


def _local_processes() -> int:
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


@dataclass
class Estimate:
    """Bytes by what needs them, in the order added."""

    parts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, nbytes: float) -> Estimate:
        if nbytes > 0:
            self.parts[name] = self.parts.get(name, 0) + int(nbytes)
        return self

    def extend(self, other: Estimate) -> Estimate:
        for name, nbytes in other.parts.items():
            self.add(name, nbytes)
        return self

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def text(self) -> str:
        return ", ".join(f"{name} {human_bytes(n)}" for name, n in self.parts.items())


def over_budget(estimate: Estimate) -> str | None:
    """Why `estimate` cannot be allocated here (estimate, parts, budget); None when it fits."""
    nbytes, source = budget()
    if nbytes is None or estimate.total <= nbytes:
        return None
    return (f"needs about {human_bytes(estimate.total)} of memory ({estimate.text()}), more than the memory "
            f"budget of {human_bytes(nbytes)} ({source}); refused before allocating it")


def check(estimate: Estimate, what: str) -> None:
    problem = over_budget(estimate)
    if problem:
        raise BadInput(f"{limits.clip(what)}: {problem}")


# --- models ---------------------------------------------------------------------------------------------
def model_problem(nbytes: int) -> str | None:
    """Why a model of `nbytes` of weights cannot be built here; None when it can. Building holds two copies:
    the model and its initial weights (kept for rewinding), or the model and the tensors read from its file."""
    return over_budget(Estimate().add("weights", nbytes).add("second copy (initial or loaded weights)", nbytes))


def activation_sizes(module: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> tuple[int, int] | None:
    """(sum, largest) bytes per sample of the outputs of every leaf module (in-place ones left out: they reuse
    their input), from one forward pass at `batch` samples on the meta device: nothing is allocated and the
    module's own tensors are left alone. None when the model does not run on meta tensors."""
    leaves = [m for m in module.modules() if next(m.children(), None) is None] or [module]
    sizes: list[int] = []

    def hook(mod: nn.Module, _inputs: Any, output: Any) -> None:
        if not getattr(mod, "inplace", False):
            sizes.append(tensor_bytes(output))
    handles = [m.register_forward_hook(hook) for m in leaves]
    tensors = dict(chain(module.named_parameters(remove_duplicate=False), module.named_buffers(remove_duplicate=False)))
    meta = {name: torch.empty_like(t, device="meta") for name, t in tensors.items()}
    dtype = next((t.dtype for t in tensors.values() if t.is_floating_point()), torch.float32)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.func.functional_call(module, meta, (torch.empty(batch, *input_shape, dtype=dtype, device="meta"),))
    except Exception:  # noqa: BLE001 - data-dependent control flow, quantized kernels, scripted modules
        return None
    finally:
        for h in handles:
            h.remove()
    return sum(sizes) // batch, max(sizes, default=0) // batch


# --- data -----------------------------------------------------------------------------------------------
def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _held_bytes(bundle: DataBundle) -> int:
    """Bytes of the tensors a data set holds in memory: those its loader function keeps (an image folder keeps
    only paths). Loaders slice a copy for each split, so twice that."""
    cells = getattr(bundle.make, "__closure__", None) or ()
    held = 0
    for cell in cells:
        try:
            held += tensor_bytes(cell.cell_contents)
        except ValueError:                       # an empty cell
            continue
    return 2 * held


def _batch(bundle: DataBundle, split: str, batch_size: int) -> int:
    """Samples in one batch of `split`: no more than the split holds."""
    sizes = bundle.sizes
    n = max(sizes.get("val", 0), sizes.get("test", 0)) if split == "eval" else sizes.get(split, batch_size)
    return max(1, min(batch_size, n))


def loader_workers(bundle: DataBundle) -> int:
    """Loader processes of the data set (image folders only): its `workers`, or one per core up to 4."""
    if not bundle.spec.startswith("imagefolder:"):
        return 0
    workers = bundle.settings.workers
    return max(1, min(4, usable_cores())) if workers is None else workers


def data_estimate(bundle: DataBundle, train_batch: int | None = None) -> Estimate:
    """The data's memory: held tensors, its largest batch (the batch transforms hold about BATCH_COPIES of it)
    and, for an image folder, each loader process (its own memory plus the batches it prefetches)."""
    sample = 4 * math.prod(bundle.input_shape)           # float32 once transformed
    batches = [_batch(bundle, "train", max(train_batch or 0, bundle.default_batch("train"))),
               _batch(bundle, "eval", bundle.default_batch("val")), _batch(bundle, "calib", bundle.default_batch("calib"))]
    largest = max(batches)
    estimate = Estimate().add("data held", _held_bytes(bundle))
    estimate.add(f"a batch of {largest:,} at {'x'.join(map(str, bundle.input_shape))}", limits.BATCH_COPIES * largest * sample)
    workers = loader_workers(bundle)
    estimate.add(f"{workers} loader processes", workers * (limits.WORKER_BYTES + limits.LOADER_PREFETCH * largest * sample))
    return estimate


def check_data(bundle: DataBundle) -> None:
    """BadInput when the data set's loaders would start more processes than there are cores, or its memory
    (`data_estimate`) is over budget. Called when a DataBundle is made, before any batch is drawn."""
    workers, cores, estimate = loader_workers(bundle), usable_cores(), data_estimate(bundle)
    if workers > cores:
        raise BadInput(f"{limits.clip(bundle.spec)}: data.workers: {workers} loader processes (about "
                       f"{human_bytes(estimate.parts[f'{workers} loader processes'])} of memory), but this machine has "
                       f"{cores} usable cores; use at most {cores} (or leave it unset: one per core, up to 4)")
    check(estimate, bundle.spec)


# --- a model meeting its data ---------------------------------------------------------------------------
def run_estimate(loaded: LoadedModel, bundle: DataBundle, train_batch: int | None = None) -> Estimate:
    """Weights (and initial weights), data, and activations: evaluation at the eval batch (the input, the largest
    output and the next one live at once); with `train_batch`, training too: gradients and Adam's two moments
    (TRAIN_STATE_COPIES - 1 more copies of the weights) and every leaf module's output kept for the backward
    pass, plus the largest two of their gradients."""
    weights = count(loaded.module)[1]
    estimate = Estimate().add("weights", weights).add("initial weights", tensor_bytes(loaded.init_state))
    if train_batch:
        estimate.add("gradients and optimizer state", (limits.TRAIN_STATE_COPIES - 1) * weights)
    example = int(loaded.meta.get("batch") or 1)
    shape = tuple(bundle.input_shape)
    per_sample = activation_sizes(loaded.module, shape, example)
    if per_sample is not None:
        total, largest = per_sample
        eval_batch = _batch(bundle, "eval", bundle.default_batch("val"))
        acts = {f"activations (eval batch {eval_batch:,})": eval_batch * (4 * math.prod(shape) + 2 * largest)}
        if train_batch:
            batch = _batch(bundle, "train", train_batch)
            acts[f"activations (training batch {batch:,})"] = batch * (total + 2 * largest)
        name = max(acts, key=acts.__getitem__)
        estimate.add(name, acts[name])
    return estimate.extend(data_estimate(bundle, train_batch))


def check_run(loaded: LoadedModel, bundle: DataBundle, what: str, train_batch: int | None = None) -> None:
    """BadInput when `run_estimate` is over budget: before the model first runs on the data."""
    check(run_estimate(loaded, bundle, train_batch), what)
