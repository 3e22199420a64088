"""The quantize stage: settings validation, k-means with centroid fine-tuning, binary/ternary, fp16/bf16."""
import pytest
import torch
from quant_helpers import make_session, run_stage

from workbench.core.errors import BadInput, RecipeError
from workbench.core.metrics import accuracy
from workbench.core.recipe import Recipe
from workbench.core.snapshots import load_snapshot, save_snapshot


@pytest.mark.parametrize("bits, message", [
    ({"conv": 8, "linear": 9}, "stages[1].bits.linear: must be in [1, 8], got 9"),
    ({"fc1": 0}, "stages[1].bits.fc1: must be in [1, 8], got 0"),
    (12, "stages[1].bits: must be in [1, 8], got 12"),
])
def test_bits_outside_1_to_8_rejected_with_the_field_path(bits, message):
    with pytest.raises(RecipeError) as err:
        Recipe.from_dict({"stages": [{"kind": "train"}, {"kind": "quantize", "bits": bits}]})
    assert str(err.value) == message


def test_unknown_layer_in_bits_names_the_path(digits):
    session = make_session(digits)
    with pytest.raises(BadInput, match=r"stages\[2\]\.bits\.fc9: no layer named 'fc9'"):
        run_stage(session, "quantize", 2, bits={"linear": 5, "fc9": 3})


def test_shipped_recipe_validates():
    from pathlib import Path
    recipe = Recipe.load(Path(__file__).resolve().parents[1] / "resources/recipes/deep_compression.yaml")
    kinds = [s.kind for s in recipe.stages]
    assert kinds[0] == "prune" and "quantize" in kinds and kinds[-1] == "export"
    q = next(s.params for s in recipe.stages if s.kind == "quantize")
    assert (q.method, q.bits, q.finetune_epochs > 0) == ("kmeans", {"conv": 8, "linear": 5}, True)
    assert "packed" in recipe.stages[-1].params.formats


def _prune_half(session):
    """Zero and mask the smaller half of every weight matrix (stand-in for a prune stage)."""
    for name, p in session.model.named_parameters():
        if name.endswith("weight"):
            mask = p.detach().abs() > p.detach().abs().median()
            session.masks[name] = mask
    session.apply_masks()


def test_kmeans_with_centroid_finetuning_stays_tied(digits):
    session = make_session(digits)
    _prune_half(session)
    before = accuracy(session.model, digits.test)
    run_stage(session, "quantize", 1, method="kmeans", bits={"linear": 4, "fc3": 3}, finetune_epochs=1, lr=1e-3)
    params = dict(session.model.named_parameters())
    for name, bits in (("fc1.weight", 4), ("fc2.weight", 4), ("fc3.weight", 3)):
        w, book = params[name].detach(), session.codebooks[name]
        assert book.numel() <= 2 ** bits
        assert (w[~session.masks[name]] == 0).all()                 # pruned weights stay zero
        assert torch.isin(w[session.masks[name]], book).all()       # kept weights are codebook values
    assert accuracy(session.model, digits.test) > before - 0.05
    entry = session.history[-1]
    assert entry["method"] == "kmeans" and entry["layers"]["fc3.weight"]["bits"] == 3


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    from workbench.core.quantization.sharing import share_layer
    w = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    layer = share_layer("w", w, w.abs() > 0.3, 2, "linear")
    book = torch.nn.Parameter(layer.codebook.clone())
    upstream = torch.randn(6, 5)
    (layer.weight(book) * upstream).sum().backward()
    expected = torch.zeros_like(book).index_add_(0, layer.slots[layer.slots > 0] - 1, upstream[layer.slots > 0])
    assert torch.allclose(book.grad, expected)


@pytest.mark.parametrize("method, values_per_channel", [("binary", 2), ("ternary", 3)])
def test_binary_and_ternary_weights(digits, method, values_per_channel):
    session = make_session(digits)
    _prune_half(session)
    run_stage(session, "quantize", 1, method=method, finetune_epochs=1, lr=1e-3, exclude=["fc3"])
    w = session.model.fc1.weight.detach()
    assert (w[~session.masks["fc1.weight"]] == 0).all()
    for row in w:
        nz = row[row != 0]
        assert nz.abs().unique().numel() <= 1                     # one scale per output channel
        assert row.unique().numel() <= values_per_channel + (0 if method == "ternary" else 1)
    assert session.model.fc3.weight.unique().numel() > 100          # excluded layer untouched
    assert accuracy(session.model, digits.test) > 0.6


@pytest.mark.parametrize("method, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_runs_and_reloads(digits, tmp_path, method, dtype):
    session = make_session(digits, "sample:digits_mlp", tmp_path)
    before = accuracy(session.model, digits.test)
    run_stage(session, "quantize", 1, method=method)
    assert all(t.dtype == dtype for t in session.model.state_dict().values())
    x = digits.example_input(8)
    assert session.model(x).dtype == torch.float32                  # callers keep float32 in and out
    assert abs(accuracy(session.model, digits.test) - before) < 0.02
    path = save_snapshot(session, 1, "quantize", None)
    reloaded = load_snapshot(path).module.eval()
    assert reloaded.fc1.weight.dtype == dtype
    assert torch.equal(reloaded(x), session.model.eval()(x))
