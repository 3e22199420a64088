"""Whole attention heads removed from timm's `Attention` (ViT, DeiT, MobileViT) by torch-pruning itself.

torch-pruning follows `qkv(x).reshape(B, N, 3, heads, head_dim) ... reshape(B, N, attn_dim) -> proj` when it
is told each `qkv`'s head count (`num_heads=`); with `prune_num_heads=True, prune_head_dims=False` it removes
whole heads: rows h*head_dim..(h+1)*head_dim of q, k and v and the same columns of `proj`. The head width
stays, so the softmax scale (`head_dim ** -0.5`, also sdpa's default) and each remaining head compute exactly
what they computed before; only `num_heads` and `attn_dim` change, and they follow from the layers' shapes
(`sync`), so a replayed history needs nothing beyond the pruned indices.

Attentions whose normalisation spans the heads (`qk_norm`, `scale_norm`) stay opaque stand-ins (`specs`):
their inner width is kept, as before.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol, cast

import torch
from torch import nn

from .specs import _name

ATTENTION = "timm.layers.attention.Attention"


class Attention(Protocol):
    """What is used here of timm's `Attention`."""
    qkv: nn.Linear
    proj: nn.Linear
    num_heads: int
    head_dim: int
    attn_dim: int


def attentions(modules: Iterable[nn.Module]) -> list[Attention]:
    """The attentions among `modules` whose heads torch-pruning removes."""
    return [cast(Attention, m) for m in modules if prunable(m)]


def prunable(m: nn.Module) -> bool:
    """A timm `Attention` whose heads torch-pruning can remove (no norm over q, k or the heads' output)."""
    return (_name(type(m)) == ATTENTION and isinstance(getattr(m, "qkv", None), nn.Linear)
            and all(isinstance(getattr(m, n, None), nn.Identity) for n in ("q_norm", "k_norm", "norm"))
            and isinstance(getattr(m, "head_dim", None), int) and isinstance(getattr(m, "num_heads", None), int))


def heads(modules: Iterable[nn.Module]) -> dict[nn.Module, int]:
    """torch-pruning's `num_heads=`: each prunable attention's `qkv` -> its head count."""
    return {a.qkv: a.num_heads for a in attentions(modules)}


def sync(model: nn.Module) -> None:
    """After heads went: each attention's `num_heads` and `attn_dim` from its `qkv` (the head width is kept)."""
    for a in attentions(model.modules()):
        a.num_heads = a.qkv.out_features // (3 * a.head_dim)
        a.attn_dim = a.num_heads * a.head_dim


def removed(total: int, ratio: float) -> int:
    """Heads removed of `total` at `ratio` (torch-pruning's rounding: up), at least one left."""
    return min(total - 1, max(0, math.ceil(total * ratio - 1e-6)))


def plan_step(pruner: Any) -> None:     # a torch_pruning MetaPruner (local scope)
    """Before `pruner.step()` with local scope: each attention's head ratio for the coming step, relative to
    the heads it has now, so that after step k it keeps `total - removed(total, cumulative target k)`.

    torch-pruning applies a local step's cumulative target to the heads left, not to the initial count (two
    steps to 50 % of 8 heads would keep 3); its global scope already counts from the initial total."""
    if pruner.global_pruning or not pruner.num_heads:
        return
    step = pruner.current_step + 1
    if step > pruner.iterative_steps:
        return
    for qkv, now in pruner.num_heads.items():
        schedule = pruner.head_pruning_ratio_dict.get(qkv, pruner.per_step_head_pruning_ratio)
        total = pruner.init_num_heads.get(qkv, now)
        go = now - (total - removed(total, float(schedule[step])))
        ratios = list(schedule)
        ratios[step] = (go - 0.5) / now if go > 0 else 0.0     # ceil(ratio * now) == go
        pruner.head_pruning_ratio_dict[qkv] = ratios


def _attentions(model: nn.Module) -> dict[int, Attention]:
    """id(qkv) -> its prunable attention."""
    return {id(a.qkv): a for a in attentions(model.modules())}


def _per_head(pruner: Any, attention: Attention) -> tuple[nn.Linear, Any, torch.Tensor] | None:
    """(root, pruning function, importance of each head) of an attention's head group (rooted at `proj`'s
    inputs, as torch-pruning roots it), or None when the importance cannot rank it."""
    graph, proj = pruner.DG, attention.proj
    fn = graph.get_pruner_of_module(proj).prune_in_channels
    width, now = attention.head_dim, attention.num_heads
    importance = pruner.estimate_importance(graph.get_pruning_group(proj, fn, list(range(now * width))))
    if importance is None:
        return None
    return proj, fn, importance.reshape(now, width).mean(1).cpu()


def global_groups(pruner: Any) -> list[Any]:     # a torch_pruning MetaPruner (global scope); torch_pruning Groups
    """With global scope, after `pruner.step()`: the groups that remove the least important heads across all
    attentions, so that `per_step_head_pruning_ratio` of the initial heads are gone; no attention keeps fewer
    than `max_pruning_ratio` allows (and never none). An attention under a per-layer override loses its own
    share instead.

    torch-pruning's global head threshold has no per-layer floor: an attention whose heads all fall below it is
    skipped whole (its group would leave no channels), so the target is missed and that attention kept."""
    step = min(pruner.current_step, pruner.iterative_steps)
    found = _attentions(pruner.model)
    ranked: list[tuple[float, int, int]] = []      # (importance, attention, head)
    chosen: dict[int, list[int]] = {}
    plans: list[tuple[nn.Linear, Any, torch.Tensor]] = []
    total = left = 0
    for qkv in pruner.num_heads:
        attention = found.get(id(qkv))
        ranking = _per_head(pruner, attention) if attention is not None else None
        if attention is None or ranking is None:
            continue
        k, first, now = len(plans), int(pruner.init_num_heads.get(qkv, attention.num_heads)), attention.num_heads
        plans.append(ranking)
        order = sorted(range(now), key=lambda h: float(ranking[2][h]))
        if qkv in pruner.head_pruning_ratio_dict:      # an override: its own target, outside the ranking
            chosen[k] = order[:max(0, now - (first - removed(first, float(pruner.head_pruning_ratio_dict[qkv][step]))))]
            continue
        total, left = total + first, left + now
        floor = first - removed(first, pruner.max_pruning_ratio)
        ranked += [(float(ranking[2][h]), k, h) for h in order[:max(0, now - floor)]]
    go = left - int(total * (1 - float(pruner.per_step_head_pruning_ratio[step])))
    for _, k, h in sorted(ranked)[:max(0, go)]:
        chosen.setdefault(k, []).append(h)
    groups = []
    for k, drop in chosen.items():
        root, fn, _ = plans[k]
        width = root.in_features // len(plans[k][2])
        if drop:
            groups.append(pruner.DG.get_pruning_group(root, fn, [h * width + j for h in sorted(drop) for j in range(width)]))
    return groups


def after_step(pruner: Any) -> None:
    """The model's head counts from its shapes, and torch-pruning's own counts set to them (they are what it
    reshapes the next step's importance by)."""
    sync(pruner.model)
    found = _attentions(pruner.model)
    for qkv in list(pruner.num_heads):
        attention = found.get(id(qkv))
        if attention is not None:
            pruner.num_heads[qkv] = pruner.out_channel_groups[qkv] = attention.num_heads
