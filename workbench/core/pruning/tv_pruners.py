"""Custom torch-pruning pruners for the torchvision layers its tracer cannot follow.

torch-pruning builds its dependency graph from the autograd graph of one forward pass: modules of
known types (convolutions, linear layers, norms) become nodes, and every other operation is guessed
at (an element-wise op, a concatenation, a reshape taken for a flatten). A few torchvision families
compute things these guesses get wrong, and graph building then crashes, runs for minutes, or couples
the wrong channels:

* ShuffleNet V2's `channel_shuffle` (view -> transpose -> view) is taken for a flatten with a zero
  stride (ZeroDivisionError), and the half-split (`x.chunk(2)`) of the next block gets wrong split
  sizes. The shuffle interleaves the two branches' channels and the next block splits the result in
  halves, so removing a channel of a stage's trunk would have to keep every later half-split
  balanced; a channel of the first block of a stage reappears, doubled at each block, up to seven
  shuffles deep, and for most stages no non-empty set of trunk channels does that. The trunk is
  therefore kept, and everything else is pruned: the stem, each branch's inner (depthwise) channels
  and the final 1x1 convolution.
* Swin (V1 and V2) calls `F.linear` on the attention's `qkv`/`proj` weights inside
  `shifted_window_attention` (so those layers are invisible to the tracer), partitions windows with
  6-D reshapes, and its patch merging concatenates strided slices along the last dimension
  (TypeError, or the tracer runs for minutes).
* MaxViT partitions windows and grids with 6-D reshapes and splits its fused q/k/v projection.

Each of these layers is traced as **one opaque operation** (its real output computed without
autograd and attached to its input by a single autograd node, `traced_as_one_op`), and gets a
`BasePruningFunc` subclass, passed to torch-pruning through `customized_pruners=`, that removes the
right weights when the layer's input or output channels go:

`TrunkOpPruner`
    ShuffleNet V2's shuffle and half-splits (traced as `TrunkOp`s) pass channels through but none may
    be removed: the stand-ins are listed in the pruner's ignored layers, so torch-pruning skips every
    group that reaches them (the trunk).
`SwinAttentionPruner`, `MaxVitAttentionPruner`
    channel-preserving: removing embedding channel j removes input column j of the q/k/v projection,
    its rows j, C+j and 2C+j (the same channel of q, k and v, as torch-pruning's own
    `nn.MultiheadAttention` pruner does) and row and column j of the output projection. The
    attention splits its width evenly over a fixed number of heads (swin takes the width from its
    input; MaxViT's `head_dim` is updated here), so a group that reaches an attention layer must keep
    a multiple of its head count (`channel_multiple`; `structured.fit_heads` rounds such groups).
    Relative-position bias tables (and V2's logit scales and bias MLP) are per head and are kept.
`SwinPatchMergingPruner`
    input channel j is four columns of the 2x2 merge (j, C+j, 2C+j, 3C+j of the norm and the
    reduction); the output channels are the reduction's rows (and those of V2's norm after it).
`ChannelPreservingOpPruner`
    MaxViT's window partition and departition: reshapes that keep channel j as channel j.

All of this sits behind `adapt(model)`, which `structured.make_pruner` (the `prune` stage, the
slimmable slicer, `prune_once`) and `structured.replay_history` both use, so a snapshot replays the
same groups on a freshly built model. The modules themselves do not change: the patched forwards are
instance attributes that exist only while torch-pruning traces.
"""
from __future__ import annotations

import contextlib
import math
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch
import torch_pruning as tp
from torch import nn

from . import timm_pruners
from .one_op import OneOp
from .slicing import keep_indices, select_linear, select_norm, stacked
from .tv_layers import MaxVitAttention, PatchMerging, ShuffleBlock, SwinAttention


def _one_op_forward(module: nn.Module, original: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out: torch.Tensor = OneOp.apply(x, lambda t: original(module, t, *args, **kwargs))
        return out
    return forward


@contextlib.contextmanager
def traced_as_one_op(modules: Sequence[nn.Module]) -> Iterator[None]:
    """While active, each module's forward is one autograd node from its first input to its output."""
    for m in modules:
        m.forward = _one_op_forward(m, type(m).forward)
    try:
        yield
    finally:
        for m in modules:
            m.__dict__.pop("forward", None)


class CustomPruner(tp.pruner.BasePruningFunc):  # type: ignore[misc]  # torch_pruning is untyped
    """Base of the pruners here."""

    def channel_multiple(self, layer: nn.Module) -> int:
        """The number of channels left must stay a multiple of this (attention heads)."""
        return 1


class _ChannelPreserving(CustomPruner):
    """A layer whose channel j in is channel j out: pruning either side prunes both (intra-layer coupling)."""

    def _prune(self, layer: nn.Module, idxs: list[int]) -> None:
        pass

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        self._prune(layer, sorted(int(i) for i in idxs))
        return layer

    prune_in_channels = prune_out_channels

    def _channels(self, layer: nn.Module) -> int | None:
        return None

    def get_out_channels(self, layer: nn.Module) -> int | None:
        return self._channels(layer)

    def get_in_channels(self, layer: nn.Module) -> int | None:
        return self._channels(layer)


class ChannelPreservingOpPruner(_ChannelPreserving):
    """Reshapes that keep channel j as channel j (MaxViT's window partition): nothing to remove."""


# ---------------------------------------------------------------- ShuffleNet V2

class TrunkOp(nn.Module):
    """Stand-in, while tracing, for an operation on ShuffleNet V2's trunk: one autograd node."""

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.function = function
        self.channels: tuple[int, int] | None = None   # (in, out), seen while tracing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = OneOp.apply(x, self.function)
        self.channels = (int(x.shape[1]), int(out.shape[1]))
        return out


class TrunkOpPruner(CustomPruner):
    """Channels pass through the trunk's shuffles and half-splits, but none may be removed: the
    stand-ins are ignored layers, so every group that reaches them is skipped (see the module docstring)."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        if len(idxs):
            raise RuntimeError("channels of a ShuffleNet V2 trunk (channel shuffle, half-split) cannot be removed")
        return layer

    prune_in_channels = prune_out_channels   # coupled: a group through here has it as an output, so is skipped

    def get_in_channels(self, layer: TrunkOp) -> int | None:
        return layer.channels[0] if layer.channels else None

    def get_out_channels(self, layer: TrunkOp) -> int | None:
        return layer.channels[1] if layer.channels else None


def _traced_shufflenet_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's `InvertedResidual.forward` with the half-split and the shuffle as `TrunkOp`s
    (`check_shufflenet_block` verifies that it computes the same)."""
    b = cast(ShuffleBlock, block)
    first, second, shuffle = b._wb_trunk
    if b.stride == 1:
        out = torch.cat((first(x), b.branch2(second(x))), dim=1)
    else:
        out = torch.cat((b.branch1(x), b.branch2(x)), dim=1)
    shuffled: torch.Tensor = shuffle(out)
    return shuffled


def _trunk_ops() -> tuple[TrunkOp, TrunkOp, TrunkOp]:
    from torchvision.models.shufflenetv2 import channel_shuffle
    return (TrunkOp(lambda t: t.chunk(2, dim=1)[0]), TrunkOp(lambda t: t.chunk(2, dim=1)[1]),
            TrunkOp(lambda t: channel_shuffle(t, 2)))


_CHECKED: dict[type[nn.Module], bool] = {}


def check_shufflenet_block(cls: type[nn.Module]) -> bool:
    """Does the traced stand-in compute what this torchvision version's block computes? (checked once)"""
    if cls not in _CHECKED:
        ok = True
        with torch.no_grad():
            for stride, inp in ((1, 8), (2, 4)):
                block = cls(inp, 8, stride).eval()
                block._wb_trunk = nn.ModuleList(_trunk_ops())
                x = torch.randn(2, inp, 6, 6)
                ok = ok and torch.equal(cls.forward(block, x), _traced_shufflenet_block(block, x))
        _CHECKED[cls] = ok
    return _CHECKED[cls]


# ---------------------------------------------------------------- Swin, MaxViT

class SwinAttentionPruner(_ChannelPreserving):
    """torchvision `ShiftedWindowAttention(V2)`: embedding channel j = q/k/v channel j (see the module docstring)."""

    def _prune(self, layer: nn.Module, idxs: list[int]) -> None:
        if not idxs:
            return
        a = cast(SwinAttention, layer)
        c = a.qkv.in_features
        keep = keep_indices(c, idxs)
        select_linear(a.qkv, rows=stacked(keep, c, 3), cols=keep)
        select_linear(a.proj, rows=keep, cols=keep)

    def _channels(self, layer: nn.Module) -> int:
        return cast(SwinAttention, layer).qkv.in_features

    def channel_multiple(self, layer: nn.Module) -> int:
        return int(cast(SwinAttention, layer).num_heads)


class MaxVitAttentionPruner(_ChannelPreserving):
    """torchvision `RelativePositionalMultiHeadAttention`: embedding channel j = q/k/v channel j."""

    def _prune(self, layer: nn.Module, idxs: list[int]) -> None:
        if not idxs:
            return
        a = cast(MaxVitAttention, layer)
        d = a.merge.out_features
        keep = keep_indices(d, idxs)
        select_linear(a.to_qkv, rows=stacked(keep, d, 3), cols=keep)
        select_linear(a.merge, rows=keep, cols=keep)
        a.head_dim = len(keep) // a.n_heads

    def _channels(self, layer: nn.Module) -> int:
        return cast(MaxVitAttention, layer).merge.out_features

    def channel_multiple(self, layer: nn.Module) -> int:
        return int(cast(MaxVitAttention, layer).n_heads)


class SwinPatchMergingPruner(CustomPruner):
    """torchvision `PatchMerging(V2)`: [x0 x1 x2 x3] (4C) -> norm -> reduction (2C), or reduction -> norm."""

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        m = cast(PatchMerging, layer)
        idxs = sorted(int(i) for i in idxs)
        if not idxs:
            return layer
        c = m.reduction.in_features // 4
        keep4 = stacked(keep_indices(c, idxs), c, 4)
        select_linear(m.reduction, cols=keep4)
        if m.norm.weight.shape[0] == 4 * c:      # V1: the norm comes before the reduction
            select_norm(m.norm, keep4)
        m.dim = c - len(idxs)
        return layer

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        m = cast(PatchMerging, layer)
        idxs = sorted(int(i) for i in idxs)
        if not idxs:
            return layer
        out = m.reduction.out_features
        keep = keep_indices(out, idxs)
        select_linear(m.reduction, rows=keep)
        if m.norm.weight.shape[0] == out:        # V2: the norm comes after the reduction
            select_norm(m.norm, keep)
        return layer

    def get_in_channels(self, layer: nn.Module) -> int:
        return cast(PatchMerging, layer).reduction.in_features // 4

    def get_out_channels(self, layer: nn.Module) -> int:
        return cast(PatchMerging, layer).reduction.out_features


# ---------------------------------------------------------------- per model

class Adapter(Protocol):
    """What `structured` uses of `adapt(model)`: an `Adaptation`, or timm's `TimmAdaptation` around one."""

    def tracing(self) -> contextlib.AbstractContextManager[None]: ...
    def kwargs(self) -> dict[str, Any]: ...
    def ignore(self, ignored: Sequence[nn.Module]) -> list[nn.Module]: ...
    def heads(self) -> dict[nn.Module, int]: ...


@dataclass
class Adaptation:
    """What torch-pruning needs to handle one model: custom pruners, layers to skip, how to trace."""
    pruners: dict[type[nn.Module], CustomPruner] = field(default_factory=dict)
    ignored: list[nn.Module] = field(default_factory=list)
    one_op: list[nn.Module] = field(default_factory=list)                 # traced as a single operation
    # (ShuffleNet block, its trunk ops)
    blocks: list[tuple[nn.Module, tuple[TrunkOp, TrunkOp, TrunkOp]]] = field(default_factory=list)

    @contextlib.contextmanager
    def tracing(self) -> Iterator[None]:
        """Active while torch-pruning builds its dependency graph; leaves the model as it was."""
        patched: list[nn.Module] = []
        try:
            for block, trunk in self.blocks:
                patched.append(block)
                block._wb_trunk = nn.ModuleList(trunk)   # submodules while tracing, so torch-pruning hooks them
                block.forward = types.MethodType(_traced_shufflenet_block, block)
            with traced_as_one_op(self.one_op):
                yield
        finally:
            for block in patched:
                block.__dict__.pop("forward", None)
                if "_wb_trunk" in block._modules:
                    del block._wb_trunk

    def kwargs(self) -> dict[str, Any]:
        return {"customized_pruners": dict(self.pruners)} if self.pruners else {}

    def heads(self) -> dict[nn.Module, int]:
        """torch-pruning's `num_heads=` (attention `qkv` -> heads): none here (torchvision's attentions are
        `nn.MultiheadAttention`, whose heads torch-pruning narrows itself, or custom pruners above)."""
        return {}

    def ignore(self, ignored: Sequence[nn.Module]) -> list[nn.Module]:
        """The layers torch-pruning must skip: `ignored`, the ShuffleNet trunk stand-ins, and each layer
        traced as one operation that contains an ignored layer (e.g. a swin attention whose `qkv` is
        excluded: its channels can only go with the whole attention)."""
        skip = {id(m) for m in ignored}
        owners = [m for m in self.one_op if any(id(sub) in skip for sub in m.modules())]
        return [*ignored, *self.ignored, *owners]


def adapt(model: nn.Module) -> Adapter:
    """The custom pruners and tracing changes `model` needs (nothing for models torch-pruning handles): those
    of its torchvision layers here, those of its timm layers from `timm_pruners`."""
    return timm_pruners.extend(model, _torchvision(model))


def _torchvision(model: nn.Module) -> Adaptation:
    a = Adaptation()
    if not any(type(m).__module__.startswith("torchvision.models") for m in model.modules()):
        return a
    from torchvision.models import maxvit, shufflenetv2
    from torchvision.models import swin_transformer as swin

    for m in model.modules():
        t = type(m)
        if t in (swin.ShiftedWindowAttention, swin.ShiftedWindowAttentionV2):
            a.pruners.setdefault(t, SwinAttentionPruner())
            a.one_op.append(m)
        elif t in (swin.PatchMerging, swin.PatchMergingV2):
            a.pruners.setdefault(t, SwinPatchMergingPruner())
            a.one_op.append(m)
        elif t is maxvit.RelativePositionalMultiHeadAttention:
            a.pruners.setdefault(t, MaxVitAttentionPruner())
            a.one_op.append(m)
        elif t in (maxvit.WindowPartition, maxvit.WindowDepartition):
            a.pruners.setdefault(t, ChannelPreservingOpPruner())
            a.one_op.append(m)
        elif t is shufflenetv2.InvertedResidual and check_shufflenet_block(t):
            a.pruners.setdefault(TrunkOp, TrunkOpPruner())
            trunk = _trunk_ops()
            a.ignored.extend(trunk)
            a.blocks.append((m, trunk))
    return a


def channel_multiple(graph: tp.DependencyGraph, group: Any) -> int:     # group: a torch_pruning Group
    """The multiple a group's remaining channels must keep (the lcm of the head counts it reaches)."""
    m = 1
    for dep, _ in group:
        pruner = graph.get_pruner_of_module(dep.target.module)
        if isinstance(pruner, CustomPruner):
            m = math.lcm(m, pruner.channel_multiple(dep.target.module))
    return m
