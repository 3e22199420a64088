"""Removing channels from the layers a timm module uses inside: the pieces every pruner here shares."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch_pruning as tp
from torch import nn

OPTYPE = tp.ops.OPTYPE
_BOX = tp.pruner.function.PrunerBox


def _keep(n: int, idxs: Sequence[int]) -> torch.Tensor:
    drop = {int(i) for i in idxs}
    return torch.tensor([i for i in range(n) if i not in drop], dtype=torch.long)


class CustomPruner(tp.pruner.BasePruningFunc):  # type: ignore[misc]  # torch_pruning is untyped
    """Base of the pruners here (no head-count constraint: attention inner widths are never pruned)."""

    def channel_multiple(self, layer: nn.Module) -> int:
        return 1


class _Sized:
    """A spec entry that removes channels itself (a parameter plus a size attribute)."""

    def __init__(self, remove: Callable[[Sequence[int]], None], size: Callable[[], int]) -> None:
        self.remove, self.size = remove, size


# An entry of a side: a layer (all of its channels on that side), or (layer, parts) when the layer sees each
# channel `parts` times, stacked (Swin's 2x2 patch merge: channel j is columns j, C+j, 2C+j, 3C+j), or a `_Sized`.
Entry = nn.Module | tuple[nn.Module, int] | _Sized


def _layer(entry: Entry) -> tuple[nn.Module | _Sized, int]:
    return entry if isinstance(entry, tuple) else (entry, 1)


def _per_channel(layer: nn.Module) -> bool:
    """A layer whose input channel j is its output channel j (a norm, a depthwise convolution)."""
    return tp.ops.module2type(layer) not in (OPTYPE.CONV, OPTYPE.LINEAR)


def _size(layer: nn.Module, side: str) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features if side == "in" else layer.out_features
    if isinstance(layer, nn.modules.conv._ConvNd):
        return layer.in_channels if side == "in" else layer.out_channels
    if isinstance(layer, nn.LayerNorm):
        return int(layer.normalized_shape[-1])
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return layer.num_features
    if isinstance(layer, nn.GroupNorm):
        return layer.num_channels
    raise TypeError(f"no channel count for {type(layer).__name__}")


def _expand(idxs: Sequence[int], width: int, parts: int) -> list[int]:
    return [k * width + int(i) for k in range(parts) for i in idxs]


def remove_inputs(entries: Sequence[Entry], idxs: Sequence[int]) -> None:
    """Remove input channels `idxs` from each entry (columns of a linear/conv; channels of a per-channel layer)."""
    _remove(entries, idxs, inputs=True)


def remove_outputs(entries: Sequence[Entry], idxs: Sequence[int]) -> None:
    """Remove output channels `idxs` from each entry (rows of a linear/conv; channels of a norm)."""
    _remove(entries, idxs, inputs=False)


def _remove(entries: Sequence[Entry], idxs: Sequence[int], inputs: bool) -> None:
    for entry in entries:
        layer, parts = _layer(entry)
        if isinstance(layer, _Sized):
            layer.remove(idxs)
            continue
        columns = inputs and not _per_channel(layer)     # a per-channel layer's input channel j is its output j
        width = _size(layer, "in" if columns else "out") // parts
        box = _BOX[tp.ops.module2type(layer)]
        (box.prune_in_channels if columns else box.prune_out_channels)(layer, _expand(idxs, width, parts))


def _channels(entries: Sequence[Entry], side: str) -> int:
    layer, parts = _layer(entries[0])
    if isinstance(layer, _Sized):
        return layer.size()
    return _size(layer, side if not _per_channel(layer) else "out") // parts
