"""Structured pruning of ViTs removes whole attention heads (core/pruning/timm_pruners/heads.py): the attention's
inner width shrinks with the rest, at least as far as torch-pruning alone takes it; the pruned model replays
exactly on a freshly built one; every head left computes what it computed before."""
from __future__ import annotations

import copy
import warnings

import pytest
import timm
import torch
import torch_pruning as tp
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.vision_transformer import VisionTransformer

from workbench.core.pruning import structured
from workbench.core.pruning.timm_pruners import heads

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def tiny_vit(heads_per_block: int = 3, fused: bool = True) -> nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2, num_heads=heads_per_block,
                              num_classes=10).eval()
    for m in model.modules():
        if heads.prunable(m):
            m.fused_attn = fused
    return model


def macs(model: nn.Module) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(X[:1])
    return int(counter.get_total_flops()) // 2


def attentions(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if heads.prunable(m)]


def torch_pruning_alone(model: nn.Module, classifier: nn.Module) -> nn.Module:
    """Torch-Pruning's own ViT recipe: its head handling (num_heads=; head dims pruned, its default)."""
    num_heads = {a.qkv: a.num_heads for a in attentions(model)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(model, X[:1], importance=tp.importance.GroupMagnitudeImportance(p=1),
                                      pruning_ratio=0.5, ignored_layers=[classifier], num_heads=num_heads)
        pruner.step()
    for a in attentions(model):
        a.num_heads = pruner.num_heads[a.qkv]
        a.head_dim = a.qkv.out_features // (3 * a.num_heads)
        a.attn_dim = a.num_heads * a.head_dim
    return model


def replayed(model: nn.Module, transform: dict, state: dict) -> nn.Module:
    structured.replay(model, transform)
    model.load_state_dict(state)
    return model


@pytest.mark.parametrize("fused", [True, False])
def test_vit_loses_whole_heads_and_replays_exactly(fused):
    model = tiny_vit(fused=fused)
    before = macs(model)
    transform = structured.prune_once(model, X[:1], 0.5, "l1")
    for a in attentions(model):
        assert a.head_dim == 64                                  # the head width is kept ...
        assert a.num_heads == 1                                  # ... 2 of 3 heads gone (rounded up, as torch-pruning)
        assert a.qkv.out_features == 3 * a.num_heads * a.head_dim == 3 * a.attn_dim
        assert a.proj.in_features == a.attn_dim
    with torch.no_grad():
        out = model(X)
    assert out.shape == (2, 10) and torch.isfinite(out).all()

    fresh = replayed(tiny_vit(fused=fused), transform, model.state_dict())
    assert [(a.num_heads, a.attn_dim) for a in attentions(fresh)] == [(a.num_heads, a.attn_dim) for a in attentions(model)]
    with torch.no_grad():
        assert torch.equal(fresh(X), out)

    alone = tiny_vit(fused=fused)
    alone = torch_pruning_alone(alone, alone.head)
    assert before / macs(model) >= before / macs(alone) > 2.0


def test_heads_left_compute_what_they_did():
    """Only the attention groups pruned (the residual stream and MLPs excluded): the attention's output equals the
    original's with the removed heads' share of `proj` zeroed."""
    model = tiny_vit(heads_per_block=4)
    original = copy.deepcopy(model)
    structured.prune_once(model, X[:1], 0.5, "l1", ["patch_embed.proj", "blocks.0.mlp.fc1", "blocks.1.mlp.fc1"])
    tokens = torch.randn(2, 5, 192)
    for a, o in zip(attentions(model), attentions(original), strict=True):
        assert a.num_heads == 2 and a.proj.in_features == 2 * 48
        q_rows, q_kept = o.qkv.weight[:192].reshape(4, 48, 192), a.qkv.weight[:96].reshape(2, 48, 192)
        kept = [h for h in range(4) if any(torch.equal(q_rows[h], k) for k in q_kept)]
        assert len(kept) == 2
        with torch.no_grad():
            for h in set(range(4)) - set(kept):
                o.proj.weight[:, h * 48:(h + 1) * 48] = 0
            assert torch.allclose(a(tokens), o(tokens), atol=1e-5)


def test_iterative_local_steps_reach_the_target_head_count():
    """torch-pruning applies a local step's cumulative ratio to the heads left; here 2 steps to 50 % of 8
    heads keep 4 (torch-pruning alone: 3)."""
    model = tiny_vit(heads_per_block=8)
    pruner = structured.make_pruner(model, X[:1], tp.importance.GroupMagnitudeImportance(p=1), 0.5, "layer", {},
                                    [model.head], None, 2)
    for expected in (6, 4):
        with torch.no_grad():
            for _ in structured.step(pruner):
                pass
        assert [a.num_heads for a in attentions(model)] == [expected, expected]
    with torch.no_grad():
        assert model(X).shape == (2, 10)


@pytest.mark.parametrize(("sparsity", "kept"), [(0.5, 8), (0.9, 2)])
def test_global_scope_ranks_heads_across_attentions_and_leaves_each_one(sparsity, kept):
    """One threshold over the heads of all attentions; none is left without heads (torch-pruning's own global
    threshold skips an attention whose heads all fall below it, and keeps it whole)."""
    model = tiny_vit(heads_per_block=8)
    pruner = structured.make_pruner(model, X[:1], tp.importance.RandomImportance(), sparsity, "global", {},
                                    [model.head], None, 1, max_layer_sparsity=0.95)
    with torch.no_grad():
        for _ in structured.step(pruner):
            pass
        assert model(X).shape == (2, 10)
    left = [a.num_heads for a in attentions(model)]
    assert sum(left) == kept and all(1 <= n < 8 for n in left)


def test_a_history_without_head_pruning_replays_with_the_heads_it_had():
    """A snapshot pruned before heads could go (its history names no attention group) replays as it was."""
    model = tiny_vit()
    transform = structured.prune_once(model, X[:1], 0.5, "l1")
    old = {**transform, "history": [h for h in transform["history"] if not h[0].endswith("attn.proj")]}
    old.pop("shapes")
    fresh = tiny_vit()
    structured.replay(fresh, old)
    for a in attentions(fresh):
        assert (a.num_heads, a.qkv.out_features, a.qkv.in_features) == (3, 576, 96)
    with torch.no_grad():
        assert fresh(X).shape == (2, 10)


def test_torchvision_vit_prunes_at_least_as_far_as_torch_pruning():
    """torchvision's ViT (nn.MultiheadAttention: torch-pruning narrows its heads with the embedding)."""
    def build() -> VisionTransformer:
        torch.manual_seed(0)
        return VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=4, hidden_dim=64,
                                 mlp_dim=128, num_classes=10).eval()
    model = build()
    before = macs(model)
    transform = structured.prune_once(model, X[:1], 0.5, "l1")
    alone = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp.pruner.MetaPruner(alone, X[:1], importance=tp.importance.GroupMagnitudeImportance(p=1),
                             pruning_ratio=0.5, ignored_layers=[alone.heads.head]).step()
    alone.hidden_dim = alone.conv_proj.out_channels
    assert before / macs(model) >= before / macs(alone) > 2.0
    fresh = replayed(build(), transform, model.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(X), model(X))
