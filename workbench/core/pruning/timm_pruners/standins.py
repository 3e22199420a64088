"""Stand-ins for timm modules while torch-pruning traces, and their pruners."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ..one_op import OneOp
from .channels import CustomPruner, _channels, remove_inputs, remove_outputs
from .specs import Spec


class StandIn(nn.Module):
    """Takes the place of a timm module while torch-pruning traces: the module's forward as one autograd node
    from its first input. The module is not a submodule of the stand-in (its layers are not traced); `spec`
    says which of its layers see which channels."""

    target: Callable[..., torch.Tensor]      # the module (or, for a `KeptOp`, a function)

    def __init__(self, target: Callable[..., torch.Tensor], spec: Spec) -> None:
        super().__init__()
        object.__setattr__(self, "target", target)
        self.spec = spec

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out: torch.Tensor = OneOp.apply(x, lambda t: self.target(t, *args, **kwargs))
        return out


class OpaqueOp(StandIn):
    """Input and output channels independent."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = super().forward(x, *args, **kwargs)
        self.out_channels = int(out.shape[1 if out.dim() == 4 else -1])   # NCHW, or tokens (B, N, C)
        return out


class PreservingOp(StandIn):
    """Channel j in is channel j out."""


class KeptOp(StandIn):
    """Kept whole: listed as an ignored layer, so torch-pruning skips every group that reaches it."""

    def __init__(self, target: Callable[..., torch.Tensor]) -> None:
        super().__init__(target, Spec([]))
        self.channels: tuple[int, int] | None = None   # (in, out), seen while tracing

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = super().forward(x, *args, **kwargs)
        dim = 1 if x.dim() == 4 else -1                 # NCHW, or tokens (B, N, C)
        self.channels = (int(x.shape[dim]), int(out.shape[dim]))
        return out


class KeptPruner(CustomPruner):
    """Nothing may be removed: a group that reaches a `KeptOp` (an ignored layer) from either side is skipped.

    Unlike `tv_pruners.TrunkOpPruner` (ShuffleNet), input and output are not coupled, so torch-pruning's group
    search stops at the op instead of going on through it (in DPN's dense concatenations that search does not
    finish); `Marker` makes torch-pruning count the input side as an output-side handler, which is what makes a group
    that reaches an ignored layer be skipped."""

    def prune_out_channels(self, layer: KeptOp, idxs: Sequence[int]) -> nn.Module:
        if len(idxs):
            raise RuntimeError(f"the channels of {getattr(layer.target, '__qualname__', type(layer.target).__name__)} "
                               f"are kept whole")
        return layer

    def prune_in_channels(self, layer: KeptOp, idxs: Sequence[int]) -> nn.Module:
        return self.prune_out_channels(layer, idxs)

    def get_in_channels(self, layer: KeptOp) -> int | None:
        return layer.channels[0] if layer.channels else None

    def get_out_channels(self, layer: KeptOp) -> int | None:
        return layer.channels[1] if layer.channels else None


class Marker(tp.pruner.BasePruningFunc):  # type: ignore[misc]  # torch_pruning is untyped
    """Registered for a type no model has: its `prune_out_channels` is `kept.prune_in_channels`, so torch-pruning's
    set of output-side handlers contains it (see `KeptPruner`)."""

    def __init__(self, kept: KeptPruner) -> None:
        super().__init__()
        self.prune_out_channels = kept.prune_in_channels   # type: ignore[method-assign]  # KeptPruner's own method, so torch-pruning's handler set holds it
        self.prune_in_channels = kept.prune_in_channels    # type: ignore[method-assign]  # the same, for the input side

    def prune_out_channels(self, layer: KeptOp, idxs: Sequence[int]) -> nn.Module:  # replaced per instance
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.Module) -> None:
        return None

    get_in_channels = get_out_channels


class _NeverInAModel(nn.Module):
    """The type `Marker` is registered for."""


class OpaquePruner(CustomPruner):
    """Removes a module's input channels (its input layers' columns) or output channels (its output rows)."""

    def prune_in_channels(self, layer: OpaqueOp, idxs: Sequence[int]) -> nn.Module:
        if len(idxs):
            remove_inputs(layer.spec.inputs, sorted(int(i) for i in idxs))
        return layer

    def prune_out_channels(self, layer: OpaqueOp, idxs: Sequence[int]) -> nn.Module:
        if len(idxs) and layer.spec.frozen:
            raise RuntimeError(f"the output channels of {type(layer.target).__name__} are kept")
        if len(idxs):
            remove_outputs(layer.spec.outputs, sorted(int(i) for i in idxs))
        return layer

    def get_in_channels(self, layer: OpaqueOp) -> int:
        return _channels(layer.spec.inputs, "in")

    def get_out_channels(self, layer: OpaqueOp) -> int | None:
        if layer.spec.frozen:
            return getattr(layer, "out_channels", None)
        return _channels(layer.spec.outputs, "out")


class PreservingPruner(CustomPruner):
    """Removes channel j of each per-channel layer of a module: in and out at once (the same function for
    both sides is how torch-pruning couples a layer's inputs to its outputs)."""

    def prune_out_channels(self, layer: PreservingOp, idxs: Sequence[int]) -> nn.Module:
        if len(idxs):
            remove_outputs(layer.spec.inputs, sorted(int(i) for i in idxs))
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: PreservingOp) -> int:
        return _channels(layer.spec.inputs, "out")

    get_in_channels = get_out_channels
