"""The preflight's order check: a stage that cannot follow an earlier one is refused before the run starts."""
import pytest
from cli_helpers import run_cli

from workbench.core import stages
from workbench.core.errors import BadInput
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import prepare

ISSUE_RECIPE = """\
model: sample:digits_cnn
data: sample:digits
stages:
  - kind: prune
    sparsity: 0.5
  - kind: train
    epochs: 1
  - kind: quantize
    method: int8_static
  - kind: export
    formats: [onnx]
"""


def test_the_issues_recipe_is_refused_at_once_naming_both_stages_and_the_fix(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(ISSUE_RECIPE)
    out = tmp_path / "out"
    proc = run_cli("run", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "Traceback" not in line and len(line.splitlines()) == 1
    assert ("stages[3] (export onnx) cannot follow stages[2] (quantize int8_static): onnx: torch.ao int8 models do "
            "not export to ONNX; put the ONNX int8 export before Quantize, or choose onnx_int8 on the float "
            "snapshot") in line
    assert not out.exists()                 # nothing ran, no folder written


def _check(text: str) -> None:
    recipe = Recipe.from_text(text)
    stages.check_order([(i, s.kind, s.params) for i, s in enumerate(recipe.stages) if s.enabled])


@pytest.mark.parametrize("first", ["quantize\n    method: int8_static", "quantize\n    method: int8_dynamic",
                                   "quantize\n    method: qat\n    finetune_epochs: 1",
                                   "auto\n    target: {latency: 0.5}\n    methods: [structured, int8]"])
@pytest.mark.parametrize("then,why", [
    ("export\n    formats: [state_dict, onnx]", "onnx: torch.ao int8 models do not export to ONNX"),
    ("export\n    formats: [onnx_int8]", "onnx_int8: onnx_int8 quantizes the float model itself"),
    ("export\n    formats: [pt2]", "pt2: torch.export does not take"),
    ("export\n    formats: [torchscript]", "torchscript: torch.ao int8 models are not traced"),
    ("export\n    formats: [safetensors]", "safetensors: safetensors holds plain tensors only"),
    ("train", "a torch.ao int8 model has packed int8 weights"),
    ("distill", "no gradients"),
    ("prune", "put this stage before Quantize"),
])
def test_after_int8_refused_with_why(first, then, why):
    kind = first.split()[0]
    with pytest.raises(BadInput, match=rf"^stages\[2\] \({then.split()[0]}[^)]*\) cannot follow stages\[0\] "
                                       rf"\({kind}[^)]*\): .*{why}"):
        _check(f"stages:\n  - kind: {first}\n  - kind: evaluate\n  - kind: {then}\n")


@pytest.mark.parametrize("text", [
    "stages:\n  - kind: quantize\n    method: int8_static\n  - kind: export\n    formats: [state_dict]\n",
    "stages:\n  - kind: export\n    formats: [onnx_int8, onnx]\n  - kind: quantize\n    method: int8_static\n",
    "stages:\n  - kind: quantize\n    method: kmeans\n  - kind: train\n  - kind: export\n    formats: [onnx]\n",
    "stages:\n  - kind: quantize\n    method: int8_static\n  - kind: export\n    enabled: false\n    formats: [onnx]\n",
])
def test_orders_that_work_are_accepted(text):
    _check(text)


def test_int8_then_state_dict_runs_through_prepare(tmp_path):
    recipe = Recipe.from_text("stages:\n  - kind: quantize\n    method: int8_static\n    calib_batches: 1\n"
                              "  - kind: export\n    formats: [state_dict]\n")
    session = prepare(recipe, RunOptions(model="sample:digits_cnn", data="sample:digits", out_dir=tmp_path / "o"))
    assert session.stage_index == -1 and session.model is not None
    refused = Recipe.from_text("stages:\n  - kind: quantize\n    method: int8_static\n"
                               "  - kind: export\n    formats: [onnx]\n")
    with pytest.raises(BadInput, match=r"stages\[1\] \(export onnx\) cannot follow stages\[0\]"):
        prepare(refused, RunOptions(model="sample:digits_cnn", data="sample:digits", out_dir=tmp_path / "p"))
    assert not (tmp_path / "p").exists()


def test_auto_int8_on_onnxruntime_leaves_the_float_model():
    """On onnxruntime the auto stage's int8 is onnxruntime's own (made at export), so the float exports may follow;
    the same stage in eager leaves a torch.ao int8 model, which they cannot take."""
    steps = [(0, s.kind, s.params) for s in Recipe.from_text(
        "stages:\n  - kind: auto\n    target: {latency: 0.5}\n    methods: [structured, int8]\n").stages]
    steps.append((1, "export", Recipe.from_text("stages:\n  - kind: export\n    formats: [onnx_int8, onnx]\n")
                  .stages[0].params))
    stages.check_order(steps, runtime="onnxruntime")
    with pytest.raises(BadInput, match=r"stages\[1\] \(export onnx_int8, onnx\) cannot follow stages\[0\] \(auto"):
        stages.check_order(steps, runtime="eager")
