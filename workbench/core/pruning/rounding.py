"""Channel counts the hardware likes: structured pruning's `round_to`.

A convolution with 48 or 64 output channels runs its kernels on full vector registers; one with 45 or 61 runs a
remainder loop in every output row. Depthwise-heavy networks (MobileNet V2, EfficientNet) reach only 55-71 % of
their MAC limit after a 50 % prune, in eager and onnxruntime alike, and part of that is such counts.

`fit` rounds the channels a group keeps to the nearest multiple of `round_to` (at least one multiple): channels
are spared or removed by the group's own importance ranking, so the pruned count stays as close to the target as
the multiple allows. torch-pruning's own `round_to` rounds the kept count down, which removes up to
`round_to - 1` channels more than asked in every layer (a 24-channel layer at 50 % and 16 keeps none, and its
group is skipped), so a larger multiple would always look faster for removing more.

`round_to: auto` (`choose`) prunes a copy of the model with each multiple of `CANDIDATES` and times the copies
alternately on the model's example input (batch 1, one thread: `latency.alternating_ms`), keeping the fastest
(a multiple within `TIE` of a smaller one's median counts as no faster: the smaller is kept). Only a
depthwise-heavy model (`depthwise_heavy`) is measured; any other keeps 1, as it did.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Generator
from typing import Any

import torch
from torch import nn

from ..events import Log, Progress
from ..latency import LATENCY_THREADS, alternating_ms
from . import tv_pruners

CANDIDATES = (1, 4, 8, 16)
DEPTHWISE_SHARE = 0.15     # depthwise-heavy: this share of its convolutions depthwise (EfficientNet-B0: 0.2)
TIE = 0.03                 # a multiple must be more than 3 % faster than a smaller one to be chosen (noise)
REPEATS = 20


def depthwise_heavy(model: nn.Module) -> bool:
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    depthwise = [m for m in convs if m.groups > 1 and m.groups == m.in_channels]
    return bool(convs) and len(depthwise) >= DEPTHWISE_SHARE * len(convs)


def fit(pruner: Any, group: Any, multiple: int) -> Any:     # a torch_pruning MetaPruner and Group; Group or None
    """`group` with the channels its root keeps rounded to the nearest multiple of `multiple` (at least one).

    Left as it is: groups with channel groups (grouped convolutions), attention heads (a head-count multiple,
    or whole timm heads), and groups whose importance cannot be ranked. None when the group would keep all."""
    graph = pruner.DG
    if multiple <= 1 or tv_pruners.channel_multiple(graph, group) > 1 or pruner._get_channel_groups(group) > 1 \
            or any(dep.target.module in pruner.num_heads for dep, _ in group):
        return group
    root, fn, idxs = group[0].dep.target.module, group[0].dep.handler, group[0].idxs
    total = graph.get_out_channels(root) if graph.is_out_channel_pruning_fn(fn) else graph.get_in_channels(root)
    if total is None:
        return group
    keep = max(multiple, int((total - len(idxs)) / multiple + 0.5) * multiple)
    if keep >= total:
        return None
    if keep == total - len(idxs):
        return group
    importance = pruner.estimate_importance(graph.get_pruning_group(root, fn, list(range(total))))
    if importance is None:
        return group
    order = sorted(range(total), key=lambda i: float(importance[i]))       # least important first
    fitted = graph.get_pruning_group(root, fn, sorted(order[:total - keep]))
    return fitted if graph.check_pruning_group(fitted) else group


def choose(model: nn.Module, example: torch.Tensor, prune_copy: Callable[[int], nn.Module],
           candidates: tuple[int, ...] = CANDIDATES, repeats: int = REPEATS) -> Generator[Log | Progress, None, int]:
    """The generator's return value: the multiple of `candidates` whose pruned copy (`prune_copy(multiple)`)
    runs fastest on `example` at batch 1 (1 for a model that is not depthwise-heavy); yields progress and a
    log line with each median."""
    if not depthwise_heavy(model):
        yield Log("info", "round_to auto: 1 (not a depthwise-heavy model: channel counts are not measured)")
        return 1
    copies = []
    for i, multiple in enumerate(candidates):
        yield Progress(i, len(candidates) + 1, f"round_to auto: pruning a copy with channel counts in multiples of {multiple}")
        copies.append(prune_copy(multiple))
    yield Progress(len(candidates), len(candidates) + 1, "round_to auto: timing the copies alternately")
    times = alternating_ms(copies, example[:1], repeats=repeats, max_seconds=10.0)
    medians = [statistics.median(t) for t in times]
    best = 0
    for i in range(1, len(candidates)):
        if medians[i] < medians[best] * (1 - TIE):
            best = i
    figures = ", ".join(f"{m}: {ms:.2f} ms" for m, ms in zip(candidates, medians, strict=True))
    yield Log("info", f"round_to auto: {candidates[best]} ({figures}; medians of {len(times[0])} alternating passes "
                      f"at batch 1, {LATENCY_THREADS} thread)")
    return candidates[best]
