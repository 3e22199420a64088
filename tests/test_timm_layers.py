"""timm models whose layers torch-pruning and FX cannot follow on their own (core/pruning/timm_pruners, int8).

Structured pruning: attention with a fused qkv (ViT), mixed depthwise convolutions split by a channel count (MixNet), DPN's sliced
dual paths (a forward rewritten for tracing). Each prunes, still runs, gets smaller, and its recorded transform
replays on a freshly built model to the same outputs (what reloading a snapshot or a .safetensors export does)."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from workbench.core import models
from workbench.core.metrics import count_params
from workbench.core.pruning import structured


@pytest.mark.parametrize(("name", "size"), [("vit_tiny_patch16_224", 224), ("mixnet_s", 64), ("dpn68", 64)])
def test_timm_model_prunes_structurally_and_replays(name, size):
    torch.manual_seed(0)
    spec = f"timm:{name}"
    loaded = models.load_builtin(spec, None, 10, seed=0)
    shape = (3, size, size)
    loaded = dataclasses.replace(loaded, input_shape=shape, record={**loaded.record, "input_shape": list(shape)})
    model = loaded.module.eval()
    x = torch.randn(2, *shape)
    before = count_params(model)[0]
    pruned = copy.deepcopy(model)
    transform = structured.prune_once(pruned, x[:1], 0.5, "l1")
    with torch.no_grad():
        out = pruned(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    after = count_params(pruned)[0]
    assert after < 0.8 * before, (before, after)
    assert not any(type(m).__name__.endswith("Op") for m in pruned.modules())     # no stand-in stays behind

    fresh = models.rebuild({**loaded.record, "transforms": [transform]}, spec).eval()
    models.load_state_into(fresh, pruned.state_dict(), spec)
    with torch.no_grad():
        again = fresh(x)
    assert count_params(fresh)[0] == after
    assert torch.allclose(again, out, rtol=1e-5, atol=1e-5), float((again - out).abs().max())


@pytest.mark.parametrize("name", ["tf_efficientnetv2_b0", "mobilevit_xs"])
def test_timm_model_with_untraceable_layers_runs_in_int8(name):
    """FX cannot trace 'same' padding computed from the input size or MobileViT's resize branch: timm's own list of
    such modules becomes float leaves, and the rest of the model runs in int8."""
    from workbench.core.quantization import int8
    torch.manual_seed(0)
    model = models.load_builtin(f"timm:{name}", None, 10, seed=0).module.eval()
    x = torch.randn(4, 3, 64, 64)
    prepared = int8.prepare_static(model, x[:1])
    list(int8.calibrate(prepared, [(x, None)], 1))
    qmodel = int8.convert(prepared)
    int8.check_runs(qmodel, x[:1])
    quantized = [m for m in qmodel.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")]
    assert len(quantized) > 10                                          # most of it runs in int8
    with torch.inference_mode():
        assert qmodel(x).shape == (4, 10)
