"""Spec resolution: a model spec string or file to a loaded model, and whether a model fits the data.

This module sits above the snapshot store and the export formats, so nothing below it needs a
function-level import to load a model:

    sample:NAME | arch:NAME[:k=v] | torchvision:NAME[:weights=W] | timm:NAME[:pretrained|:weights=PATH]
                                                            built by `models.load_builtin` (zoos: `zoo.py`)
    a snapshot folder                                       `snapshots.load_snapshot`
    .packed                                                 `export.packed.load` (its header holds the record)
    .safetensors                                            weights + the workbench record, or a bare state dict
    .pt / .pth / .bin / .ckpt                               a state dict (weights only) or, trusted, a pickled model
    .pt2, TorchScript                                       whole programs: only with trust (`untrusted`)

A bare state dict needs `arch=` (the CLI's `--arch`). `trust=True` (the CLI's `--trust`) allows files
that can run code when loaded; see `untrusted.py` and docs/security.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from . import untrusted, zoo
from .errors import BadInput, CheckpointError, SpecError
from .export import packed as packed_format
from .export.safetensors_format import read_safetensors, read_safetensors_record
from .limits import clip
from .models import LoadedModel, _suggest, from_record, load_builtin, load_state_into
from .snapshots import load_snapshot, read_meta

if TYPE_CHECKING:
    from .data import DataBundle

KNOWN_PREFIXES = ["sample", "torchvision", "timm", "arch"]


def load_model(spec: str, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
               arch: str | None = None, trust: bool = False, seed: int = 0, keep_head: bool = False,
               keep_init: bool = True, replace_head: bool = False) -> LoadedModel:
    """Resolve a model spec. `input_shape`/`num_classes` come from the data when known; random weights come
    from `seed`; pretrained weights of another number of classes get a new head unless `keep_head`; a user's own
    checkpoint for another number of classes is refused unless `replace_head`. A
    randomly initialised model keeps a copy of its initial weights (`init_state`, for a lottery-ticket
    rewind) unless `keep_init` is false (inspecting or browsing it)."""
    if not isinstance(spec, str) or not spec:
        raise SpecError("empty model spec")
    builtin = load_builtin(spec, input_shape, num_classes, seed=seed, trust=trust, keep_head=keep_head,
                           keep_init=keep_init)
    if builtin is not None:
        return builtin
    if "\0" in spec or len(spec) > 4096:
        raise SpecError(f"{clip(spec)}: not a model spec or path (a NUL byte, or longer than 4096 characters)")
    path = Path(spec).expanduser()
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:          # a name longer than the file system allows, a loop of links
        raise SpecError(f"{clip(spec)}: {exc.strerror or type(exc).__name__}") from None
    if is_dir:
        return load_snapshot(path)
    if exists and not path.is_file():     # a FIFO would block the reader, /dev/zero never ends
        raise SpecError(f"{clip(spec)}: not a regular file (a FIFO, socket or device); nothing is read from it")
    if exists:
        return load_file(path, arch, input_shape, num_classes, trust, seed, keep_head, keep_init, replace_head)
    prefix, sep, _ = spec.partition(":")
    if sep and len(prefix) > 1 and not spec.startswith(("/", ".", "~")):
        raise SpecError(f"unknown model spec prefix {prefix!r}{_suggest(prefix, KNOWN_PREFIXES)} "
                        f"(known: {', '.join(KNOWN_PREFIXES)}, or a file path)")
    raise SpecError(f"{spec}: no such file or folder")


def load_file(path: Path, arch: str | None, shape: tuple[int, int, int] | None, classes: int | None, trust: bool,
              seed: int = 0, keep_head: bool = False,
              keep_init: bool = True, replace_head: bool = False) -> LoadedModel:
    suffix = path.suffix.lower()
    if suffix == ".packed":
        return packed_format.load(path)
    if suffix == ".pt2":
        untrusted.check_recorded_digest(path)      # the workbench's own export, when its run recorded a digest
        program = untrusted.load_pt2_program(path, trust)
        module = untrusted.trainable_module(program)
        example = program.example_inputs[0][0] if program.example_inputs and program.example_inputs[0] else None
        ishape = tuple(example.shape[1:]) if isinstance(example, torch.Tensor) else None
        loaded = _frozen(module, path, ishape or shape, classes, "pt2")
        if isinstance(example, torch.Tensor) and not _dynamic_batch(program):
            loaded.meta["batch"] = int(example.shape[0])
        return loaded
    if suffix in (".pt", ".pth", ".ts", ".jit", ".bin", ".ckpt") and untrusted.is_torchscript(path):
        untrusted.check_recorded_digest(path)
        module, info = untrusted.load_torchscript(path, trust)
        return _frozen(module, path, shape, classes, "torchscript", info)
    if suffix in (".ts", ".jit"):
        raise CheckpointError(f"{path}: not a TorchScript archive (corrupt, truncated or another kind of file)")
    record = None
    if suffix == ".safetensors":
        sd, record = read_safetensors(path)
    elif suffix in (".pt", ".pth", ".bin", ".ckpt"):
        obj = untrusted.load_pickle(path, trust)
        if isinstance(obj, nn.Module):
            return _frozen(obj, path, shape, classes, "pickle")
        unwrapped = _unwrap_checkpoint(obj)
        if unwrapped is None:
            raise CheckpointError(f"{path}: not a state dict (expected a mapping of names to tensors)")
        sd = unwrapped
        if isinstance(obj, dict) and isinstance(obj.get("workbench_record"), str):
            from .errors import UnreadableFile
            from .io import parse_json
            try:                                # bounded: depth, NaN, not UTF-8
                record = parse_json(obj["workbench_record"], f"{path}: workbench_record")
            except UnreadableFile as exc:
                raise CheckpointError(f"{path}: unreadable workbench_record ({exc.problem})") from None
    else:
        raise SpecError(f"{path}: unknown file type {suffix!r} (use .safetensors, .pt/.pth, .pt2 or a snapshot folder)")
    if record is not None and arch is None:
        return from_record(sd, record, str(path))
    if arch is None:
        raise CheckpointError(f"{path}: a bare state dict; name its architecture with --arch (e.g. --arch arch:lenet5)")
    base = load_model(arch, shape, classes, seed=seed, keep_head=keep_head, keep_init=keep_init)
    own_classes = zoo.head_classes(base.module, sd)
    if classes is None and own_classes is not None:     # no data to size it: the checkpoint's own head, kept
        base = load_model(arch, shape, own_classes, seed=seed, keep_head=keep_head, keep_init=keep_init)
    try:
        load_state_into(base.module, sd, arch)
    except CheckpointError:
        # a checkpoint for another number of classes than the data's: refused (the user's trained head is never
        # thrown away silently) unless replace_head. Any other difference names the layers that differ.
        base.meta["notes"] = zoo.load_weights(base.module, sd, f"{path} with {arch}", keep_head, own_weights=True,
                                              replace_head=replace_head)
    base.spec = str(path)
    return base


def _dynamic_batch(program: torch.export.ExportedProgram) -> bool:
    """Whether a torch.export program takes any batch size (its first input's dim 0 is symbolic)."""
    try:
        spec = next(s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT")
        node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == spec.arg.name)
        return not isinstance(node.meta["val"].shape[0], int)
    except (StopIteration, KeyError, AttributeError, IndexError):
        return True


def _unwrap_checkpoint(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if all(isinstance(k, str) for k in obj) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module."): v for k, v in obj.items()}
    return None


def _frozen(module: nn.Module, path: Path, shape: tuple[int, ...] | None, classes: int | None, fmt: str,
            info: dict[str, Any] | None = None) -> LoadedModel:
    """A model loaded as a whole (no record to rebuild it from): it can be measured and exported, not restructured."""
    info = info or {}
    ishape = tuple(info.get("input_shape") or shape or guess_input_shape(module) or ())
    return LoadedModel(module, str(path), ishape, int(info.get("num_classes") or classes or 0),
                       {"base": str(path), "frozen": True}, meta={"format": fmt})


def guess_input_shape(module: nn.Module) -> tuple[int, ...] | None:
    """The input a model loaded whole most likely takes, from its first weight: C x 224 x 224 for a convolution."""
    for p in module.parameters():
        if p.ndim == 4:
            return (int(p.shape[1]), 224, 224)
        if p.ndim == 2:
            return (int(p.shape[1]),)
    return None


def preprocess_of(spec: str) -> dict[str, Any] | None:
    """The preprocessing a model spec's weights were trained with, found without building the model: from
    torchvision's weights or timm's config, or the record of a snapshot folder or workbench file."""
    prefix, sep, _ = spec.partition(":")
    if sep and prefix in zoo.ZOOS:
        return zoo.preprocess(zoo.parse(spec))
    path = Path(spec).expanduser()
    try:
        if path.is_dir():
            record = read_meta(path).get("record")
        elif path.suffix == ".safetensors" and path.is_file():
            record = read_safetensors_record(path)
        else:
            return None
    except BadInput:
        return None                  # reported when the model itself is loaded
    pre = record.get("preprocess") if isinstance(record, dict) else None
    return pre if isinstance(pre, dict) and isinstance(pre.get("input_size"), list) else None


def check_fits(module: nn.Module, bundle: DataBundle, spec: str) -> None:
    """BadInput unless the model takes the data's inputs and predicts its number of classes."""
    x = bundle.example_input(2)
    try:
        module.eval()
        with torch.no_grad():
            out = module(x)
    except Exception as exc:  # noqa: BLE001 - any failure means model and data do not fit
        raise BadInput(f"{spec} does not accept inputs of shape {list(x.shape[1:])} from {bundle.spec}: "
                       f"{str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise BadInput(f"{spec}: expected class scores of shape [batch, classes], got {getattr(out, 'shape', type(out))}")
    if out.shape[1] != bundle.num_classes:
        raise BadInput(f"{spec} predicts {out.shape[1]} classes but {bundle.spec} has {bundle.num_classes}")
