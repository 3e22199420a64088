"""Structured pruning of the torchvision families torch-pruning cannot trace by itself (custom pruners
in workbench.core.pruning.tv_pruners): ShuffleNet V2, Swin (V1, V2), MaxViT. Each prunes (fewer
parameters, same output shape), and the recorded transform replayed on a freshly built model, with
the pruned state dict loaded, reproduces the outputs, as a snapshot reload does."""
import pytest
import torch
import torchvision
from torch import nn

from workbench.core.pruning import structured, tv_pruners
from workbench.core.pruning.importance import structured_importance


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine two threads mostly wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name: str, classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, num_classes=classes).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_replays(name: str, model: nn.Module, t: dict, x: torch.Tensor) -> None:
    """The transform rebuilds the pruned shapes on a fresh model; with the pruned weights, same outputs."""
    assert t["op"] == "structured_prune" and t["history"]
    fresh = build(name)
    assert n_params(fresh) > n_params(model)
    structured.replay(fresh, t)
    assert structured.shapes(fresh) == structured.shapes(model)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    with torch.no_grad():
        out, again = model(x), fresh(x)
    assert out.abs().max() > 0
    assert (again - out).abs().max() <= 1e-5 * max(1.0, float(out.abs().max()))


def assert_untouched(model: nn.Module) -> None:
    """Tracing patched forwards on instances only while torch-pruning ran: nothing is left behind."""
    for name, m in model.named_modules():
        assert "forward" not in m.__dict__, name
        assert "_wb_trunk" not in name


def test_shufflenet_v2_prunes_everything_but_the_trunk_and_replays():
    from torchvision.models.shufflenetv2 import InvertedResidual
    assert tv_pruners.check_shufflenet_block(InvertedResidual)    # the traced stand-in computes the same
    model, x = build("shufflenet_v2_x0_5"), torch.randn(2, 3, 64, 64)
    before = n_params(model)
    t = structured.prune_once(model, x[:1], 0.5)
    assert_untouched(model)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
    assert 1.7 < before / n_params(model) < 2.3
    # pruned: the stem, each branch's inner channels, the last 1x1 convolution
    assert model.conv1[0].out_channels == 12
    assert model.stage2[1].branch2[0].out_channels == 12 and model.stage2[1].branch2[3].groups == 12
    assert model.stage3[3].branch2[5].in_channels == 24 and model.stage4[0].branch2[3].out_channels == 48
    assert model.conv5[0].out_channels == 512 and model.fc.in_features == 512
    # kept: the channels that go through the shuffles and half-splits (stage outputs)
    assert model.stage2[0].branch1[2].out_channels == 24 and model.stage2[3].branch2[5].out_channels == 24
    assert model.stage4[3].branch2[5].out_channels == 96 and model.conv5[0].in_channels == 192
    assert_replays("shufflenet_v2_x0_5", model, t, x)


def test_shufflenet_trunk_pruner_refuses_to_remove_channels():
    op = tv_pruners.TrunkOp(lambda t: t)
    with pytest.raises(RuntimeError, match="trunk"):
        tv_pruners.TrunkOpPruner().prune_out_channels(op, [0])


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_swin_prunes_embedding_heads_and_mlp_and_replays(name):
    model, x = build(name), torch.randn(2, 3, 32, 32)
    before = n_params(model)
    t = structured.prune_once(model, x[:1], 0.5)
    assert_untouched(model)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
    assert 3.5 < before / n_params(model) < 4.1
    block = model.features[1][0]
    assert block.attn.qkv.in_features == 48 and block.attn.qkv.out_features == 144    # q, k, v: 3 x 48
    assert block.attn.proj.out_features == 48 and block.mlp[0].out_features == 192
    if name == "swin_t":                                                # per-head tables are kept
        assert block.attn.relative_position_bias_table.shape[1] == 3
    else:
        assert block.attn.cpb_mlp[2].out_features == 3 and block.attn.logit_scale.shape[0] == 3
    merge = model.features[2]
    assert merge.reduction.in_features == 4 * 48 and merge.reduction.out_features == 96
    assert model.head.in_features == 384
    assert_replays(name, model, t, x)


def test_swin_rounds_widths_to_a_multiple_of_the_head_count():
    model, x = build("swin_t"), torch.randn(1, 3, 32, 32)
    structured.prune_once(model, x, 0.3)        # 70% of 96 = 67.2 channels: not a multiple of 3 heads
    widths = {m.num_heads: m.qkv.in_features for m in model.modules()
              if isinstance(m, torchvision.models.swin_transformer.ShiftedWindowAttention)}
    # int(0.7 x 96, 192, 384, 768) = 67, 134, 268, 537, rounded up to a multiple of the heads
    assert widths == {3: 69, 6: 138, 12: 276, 24: 552}
    with torch.no_grad():
        assert model(x).shape == (1, 10)


def test_swin_through_the_stage_code_path_global_and_iterative():
    """make_pruner + step (what the prune stage's driver calls), global scope, two steps."""
    model, x = build("swin_t"), torch.randn(1, 3, 32, 32)
    before = n_params(model)
    pruner = structured.make_pruner(model, x, structured_importance("l2"), 0.4, "global", {}, [model.head], None, 2)
    assert_untouched(model)
    with torch.no_grad():
        for _ in range(2):
            for _ in structured.step(pruner):
                pass
    assert n_params(model) < 0.8 * before
    assert model.features[7][1].mlp[0].out_features < 3072            # global ranking took MLP channels
    t = structured.transform(model, (3, 32, 32), structured.history(pruner))
    assert_replays("swin_t", model, t, x)


def test_swin_check_prunable_passes():
    model = build("swin_t")
    structured.check_prunable(model, torch.randn(1, 3, 32, 32), 0.5, ["head"])
    assert n_params(model) == n_params(build("swin_t"))      # the trial prunes a copy


def test_maxvit_prunes_and_replays():
    model, x = build("maxvit_t"), torch.randn(1, 3, 224, 224)      # MaxViT is built for one input size
    before = n_params(model)
    t = structured.prune_once(model, x, 0.5)
    assert_untouched(model)
    with torch.no_grad():
        assert model(x).shape == (1, 10)
    assert 3.5 < before / n_params(model) < 4.1
    attn = model.blocks[0].layers[0].layers.window_attention.attn_layer[1]
    assert attn.merge.out_features == 32 and attn.to_qkv.out_features == 96
    assert attn.head_dim * attn.n_heads == 32
    assert_replays("maxvit_t", model, t, x)


def test_trace_example_is_smaller_only_when_the_model_allows_it():
    resnet = build("resnet18")
    small = structured.trace_example(resnet, torch.randn(1, 3, 224, 224))
    assert small.shape == (1, 3, 32, 32)
    vit = build("vit_b_16")                                            # ViT needs its 224 px
    x = torch.randn(1, 3, 224, 224)
    assert structured.trace_example(vit, x) is x
    t = structured.prune_once(resnet, torch.randn(1, 3, 224, 224), 0.5)
    assert t["input_shape"] == [3, 224, 224]                           # the record keeps the data's shape
    assert_replays("resnet18", resnet, t, torch.randn(2, 3, 224, 224))


def test_excluding_a_layer_inside_a_swin_attention_keeps_that_attention():
    model, x = build("swin_t"), torch.randn(1, 3, 32, 32)
    structured.prune_once(model, x, 0.5, ignored_names=["features.3.0.attn.qkv"])
    assert model.features[3][0].attn.qkv.in_features == 192 and model.features[3][1].attn.qkv.in_features == 192
    assert model.features[1][0].attn.qkv.in_features == 48 and model.features[5][0].attn.qkv.in_features == 192
    assert model.features[3][0].mlp[0].out_features == 384     # the MLP hidden channels still go
    with torch.no_grad():
        assert model(x).shape == (1, 10)
