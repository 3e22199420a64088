"""Custom torch-pruning pruners for the timm layers its tracer cannot follow (the timm counterpart of `tv_pruners`).

torch-pruning builds its dependency graph from one traced forward pass and guesses at everything that is
not a convolution, linear layer or norm. Many timm classifiers compute things those guesses get wrong, and
structured pruning then crashes, runs for minutes, or leaves a model that no longer runs:

* **attention** (ViT/DeiT/MobileViT `timm.layers.Attention`, Swin `WindowAttention`, LeViT, EfficientFormer
  (V2), EdgeNeXt's XCA): the fused q/k/v projection is reshaped into (3, heads, head_dim) with the head count
  (and often head_dim) held as attributes, so removing rows of `qkv` breaks the reshape
  (`shape '[1, 197, 3, 3, 64]' is invalid ...`) or splits q, k and v unevenly;
* **modules that keep a channel count as an attribute**: PoolFormer's `Scale` (`scale.view(self.shape)`),
  MixNet's `MixedConv2d` (`torch.split(x, self.splits)`), Swin's `PatchMerging` (the 2x2 merge stacks four
  copies of every channel), CSPNet's `x.split(self.expand_chs // 2)`, EdgeNeXt's `x.chunk(n)`, DPN's
  `x[:, :num_1x1_c]`, ReXNet's partial residual `x[:, :in_channels] + shortcut`;
* **convolutions with one input channel but several outputs per group** (FastViT's stem and patch
  embeddings), which torch-pruning's importance and pruning functions treat as ordinary convolutions.

While torch-pruning traces (only then), each such module is swapped in its parent for a **stand-in** that
computes the module's forward as one autograd node (`pruning.one_op.OneOp`, as in `tv_pruners`) and gets a
`BasePruningFunc` here, passed through `customized_pruners=`:

`OpaqueOp` / `OpaquePruner`
    input and output channels independent (like a linear layer): removing input channel j removes input
    column j of every layer that reads the module's input (q/k/v projections, and per-channel layers on the
    way such as a depthwise stride conv); removing output channel j removes row j of the output projection
    and entry j of the norm after it. An attention's inner width (heads x head_dim, q/k/v, position biases,
    talking heads) is left as it is, so head counts and head dims stay valid and each head computes what it
    computed before on the channels that are left. timm's plain `Attention` (ViT, DeiT, MobileViT) is not a
    stand-in: torch-pruning traces it and removes whole heads (`heads`), so its inner width shrinks too.
    With `Spec.frozen` the outputs stay (CSPNet's expansion before its fixed split, EdgeNeXt's downsampling
    before its chunks) and only the inputs go.
`PreservingOp` / `PreservingPruner`
    channel j in is channel j out (a per-channel scale, a depthwise position encoding, a mixed depthwise
    convolution): removing it removes entry j of each per-channel layer and updates the size attributes.
`KeptOp` / `KeptPruner`
    nothing removed: the stand-in is an ignored layer, so torch-pruning skips every group that reaches it
    (CoaT's factorised attention, which takes its head width from its input width; non-depthwise
    `MixedConv2d`; FastViT's one-to-many grouped convolutions; the slices of DPN and the zero-padding that
    stands for ReXNet's partial residual, both inserted by a forward rewritten for tracing (`PATCHED`,
    checked against timm's own forward on the first call)).

`extend(model, adaptation)` adds all of this to the `tv_pruners.Adaptation` of a model (returns it unchanged
for a model without timm layers). `tv_pruners.adapt` calls it, so that
`structured.make_pruner` (the `prune` stage, `prune_once`) and `structured.replay_history` (snapshot reload)
build the same graph; `benchmarks/bench_timm_zoo.py` measures it on 40 models. The pruned model is
an ordinary timm model again after tracing: no stand-in, patched forward or extra module stays, except an
`EmptySplit` where every channel of one kernel size of a mixed depthwise convolution was removed.
"""
from . import heads
from .adaptation import TimmAdaptation, extend
from .specs import EmptySplit

__all__ = ["EmptySplit", "TimmAdaptation", "extend", "heads"]
