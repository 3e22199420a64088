"""Which layers of a timm module see which channels (a `Spec` per module class)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import torch
from torch import nn

from .channels import _BOX, OPTYPE, Entry, _keep, _Sized


@dataclass
class Spec:
    inputs: list[Entry]                              # read the module's input channels
    outputs: list[Entry] = field(default_factory=list)   # make its output channels (empty: channel-preserving)
    frozen: bool = False                             # outputs kept (an ignored layer): only inputs go


def _attention(m: nn.Module) -> Spec:
    """timm.layers.Attention (ViT, DeiT, MobileViT's transformer), Swin's WindowAttention, CoaT's factorised
    attention, EfficientFormer's Attention, EdgeNeXt's cross-covariance attention: x -> qkv ... proj."""
    inputs: list[Entry] = [m.get_submodule("qkv")]
    if getattr(m, "gate", None) is not None:
        inputs.append(m.get_submodule("gate"))
    return Spec(inputs, [m.get_submodule("proj")])


def _levit_attention(m: nn.Module) -> Spec:
    """LeViT Attention (qkv: linear + BN) and AttentionDownsample (kv, and q after a subsampling)."""
    inputs: list[Entry] = [m.get_submodule("qkv.linear")] if hasattr(m, "qkv") else \
        [m.get_submodule("kv.linear"), m.get_submodule("q.ln.linear")]
    return Spec(inputs, [m.get_submodule("proj.ln.linear"), m.get_submodule("proj.ln.bn")])


def _conv_norm(cn: nn.Module) -> list[Entry]:
    return [cn.get_submodule("conv"), cn.get_submodule("bn")]


def _efficientformerv2_attention(m: nn.Module) -> Spec:
    """EfficientFormerV2 Attention2d (an optional depthwise stride conv first) and Attention2dDownsample
    (its query: a depthwise conv plus pooling, then a 1x1 projection)."""
    inputs: list[Entry] = []
    if getattr(m, "stride_conv", None) is not None:
        inputs += _conv_norm(m.get_submodule("stride_conv"))
    q = m.get_submodule("q")
    if hasattr(q, "local"):
        inputs += [q.get_submodule("local"), q.get_submodule("proj.conv")]
    else:
        inputs.append(q.get_submodule("conv"))
    inputs += [m.get_submodule("k.conv"), m.get_submodule("v.conv")]
    return Spec(inputs, _conv_norm(m.get_submodule("proj")))


def _patch_merging(m: nn.Module) -> Spec:
    """timm's Swin PatchMerging: [2x2 neighbours] (4C) -> norm -> reduction."""
    reduction = m.get_submodule("reduction")
    return Spec([(m.get_submodule("norm"), 4), (reduction, 4)], [reduction])


class _Scale(Protocol):         # what `_scale` uses of timm's metaformer `Scale`
    scale: nn.Parameter
    shape: tuple[int, ...]


def _scale(module: nn.Module) -> Spec:
    """MetaFormer (PoolFormer) `Scale`: x * scale.view(shape), shape (C, 1, 1) or (C,)."""
    m = cast(_Scale, module)

    def remove(idxs: Sequence[int]) -> None:
        keep = _keep(m.scale.shape[0], idxs).to(m.scale.device)
        m.scale = nn.Parameter(m.scale.data.index_select(0, keep).contiguous(), requires_grad=m.scale.requires_grad)
        m.shape = (len(keep), *m.shape[1:])
    return Spec([_Sized(remove, lambda: m.scale.shape[0])])


def _conv_pos_enc(m: nn.Module) -> Spec:
    """CoaT ConvPosEnc: a depthwise convolution over the image tokens, the class token passed through."""
    return Spec([m.get_submodule("proj")])


class EmptySplit(nn.Module):
    """A MixedConv2d split whose channels have all been removed: no channels out, the same spatial size as
    the other splits' convolutions (stride s, 'same' padding: ceil(H / s))."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :0, ::self.stride, ::self.stride]


class _MixedConv2d(Protocol):   # what is used here of timm's `MixedConv2d` (an nn.ModuleDict of convolutions)
    splits: list[int]
    in_channels: int
    out_channels: int

    def __len__(self) -> int: ...
    def keys(self) -> Iterable[str]: ...
    def values(self) -> Iterable[nn.Conv2d | EmptySplit]: ...
    def __getitem__(self, key: str) -> nn.Module: ...
    def __setitem__(self, key: str, module: nn.Module) -> None: ...


def _as_mixed(m: nn.Module) -> _MixedConv2d:
    """`m`, a timm `MixedConv2d` (by class name: see `_name`), as what is used of it here."""
    return cast(_MixedConv2d, m)


def _mixed_depthwise(module: nn.Module) -> Spec:
    """MixNet's MixedConv2d when depthwise: channel j belongs to one of the split convolutions; a split
    left without channels becomes an `EmptySplit` (a convolution with none does not run)."""
    m = _as_mixed(module)

    def remove(idxs: Sequence[int]) -> None:
        idxs = sorted(int(i) for i in idxs)
        start, splits = 0, []
        for key, width in zip(list(m.keys()), m.splits, strict=True):
            mine = [i - start for i in idxs if start <= i < start + width]
            conv = cast(nn.Conv2d, m[key])     # a split is a convolution until all its channels go
            if mine and len(mine) == width:
                m[key] = EmptySplit(int(conv.stride[0]))
            elif mine:
                _BOX[OPTYPE.DEPTHWISE_CONV].prune_out_channels(conv, mine)
            splits.append(width - len(mine))
            start += width
        m.splits = splits
        m.in_channels = m.out_channels = sum(splits)
    return Spec([_Sized(remove, lambda: sum(m.splits))])


def _is_mixed_depthwise(m: nn.Module) -> bool:
    return all(isinstance(c, EmptySplit) or c.groups == c.in_channels == c.out_channels and c.groups > 1
               for c in _as_mixed(m).values())


# class (module.qualname) -> spec
OPAQUE: dict[str, Callable[[nn.Module], Spec]] = {
    "timm.layers.attention.Attention": _attention,
    "timm.models.swin_transformer.WindowAttention": _attention,
    "timm.models.efficientformer.Attention": _attention,
    "timm.models.edgenext.CrossCovarianceAttn": _attention,
    "timm.models.levit.Attention": _levit_attention,
    "timm.models.levit.AttentionDownsample": _levit_attention,
    "timm.models.efficientformer_v2.Attention2d": _efficientformerv2_attention,
    "timm.models.efficientformer_v2.Attention2dDownsample": _efficientformerv2_attention,
    "timm.models.swin_transformer.PatchMerging": _patch_merging,
}
PRESERVING: dict[str, Callable[[nn.Module], Spec]] = {
    "timm.models.metaformer.Scale": _scale,
    "timm.models.coat.ConvPosEnc": _conv_pos_enc,
}


# classes kept whole: CoaT's factorised attention takes its head width from its input width (C // heads) and
# its convolutional position encoding splits v by a fixed per-head width, so its input channels (the
# residual stream of the stage) stay; what follows (the MLP's hidden layer) is pruned.
KEPT = {"timm.models.coat.FactorAttnConvRelPosEnc"}


def _csp_expansion(stage: nn.Module) -> tuple[nn.Module, Spec]:
    """CSPNet CrossStage(3): conv_exp's output is split in two halves by a fixed count (`expand_chs // 2`),
    so its output channels stay (an ignored layer); its input channels (the previous stage's) can go."""
    expansion = stage.get_submodule("conv_exp")
    return expansion, Spec([expansion.get_submodule("conv")], frozen=True)


def _edgenext_stage(stage: nn.Module) -> tuple[nn.Module, Spec] | None:
    """EdgeNeXt: a SplitTransposeBlock cuts its input into equal chunks (`x.chunk(n)`) that go through
    different convolutions, so the channels of a stage with one stay: the stage's downsampling convolution
    keeps its outputs (its inputs can go). The blocks' MLPs are pruned."""
    if not any(_name(type(b)) == "timm.models.edgenext.SplitTransposeBlock" for b in stage.get_submodule("blocks").children()):
        return None
    down = getattr(stage, "downsample", None)
    if not isinstance(down, nn.Sequential) or not isinstance(down[-1], nn.Conv2d):
        return None
    return down[-1], Spec([down[-1]], frozen=True)


# class -> (child, spec) whose outputs are kept but whose inputs are pruned (None: nothing to do)
KEPT_OUTPUTS: dict[str, Callable[[nn.Module], tuple[nn.Module, Spec] | None]] = {
    "timm.models.cspnet.CrossStage": _csp_expansion,
    "timm.models.cspnet.CrossStage3": _csp_expansion,
    "timm.models.edgenext.EdgeNeXtStage": _edgenext_stage,
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
