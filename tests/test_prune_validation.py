"""Bad prune / sensitivity settings are rejected before anything runs, naming the field."""
import threading

import pytest
import torch
from torch import nn

from workbench.core.data import load_data
from workbench.core.errors import BadInput, RecipeError
from workbench.core.models import LoadedModel
from workbench.core.pruning import structured
from workbench.core.recipe import Recipe, new_stage
from workbench.core.run_handle import RunOptions
from workbench.core.runner import prepare
from workbench.core.session import Session
from workbench.core.stages import prune


def _prepare(stages: str, model: str = "sample:digits_mlp", **kw):
    return prepare(Recipe.from_text(f"model: {model}\nstages:\n{stages}"), RunOptions(**kw))


@pytest.mark.parametrize("stage,message", [
    ("{kind: prune, overrides: {fc9: 0.5}}", "stages[0].overrides.fc9: no such layer"),
    ("{kind: prune, exclude: [fc1, fc7]}", "stages[0].exclude[1]: 'fc7': no such layer"),
    ("{kind: prune, sparsity: 1.0}", "stages[0].sparsity: must be in [0.0, 1.0)"),
    ("{kind: prune, sparsity: -0.1}", "stages[0].sparsity: must be in"),
    ("{kind: prune, overrides: {fc1: 1.5}}", "stages[0].overrides.fc1: must be in"),
    ("{kind: prune, steps: 0}", "stages[0].steps: must be in"),
    ("{kind: prune, finetune_epochs: -1}", "stages[0].finetune_epochs: must be in"),
    ("{kind: prune, method: bn_scale}", "stages[0].method: bn_scale ranks whole channels"),
    ("{kind: prune, method: activation}", "stages[0].method: activation ranks whole channels"),
    ("{kind: prune, method: bn_scale, structured: true}", "stages[0].method: bn_scale ranks channels by batch-norm"),
    ("{kind: prune, method: nonsense}", "stages[0].method: must be one of"),
    ("{kind: prune, rewind: later}", "stages[0].rewind: must be one of"),
    ("{kind: prune, rewind: -1}", "stages[0].rewind: must be in [0, 1000000], got -1"),
    ("{kind: prune, schedule: gradual, initial_sparsity: 0.6, sparsity: 0.5}", "stages[0].initial_sparsity"),
    ("{kind: prune, structured: true, overrides: {fc3: 0.5}}", "stages[0].overrides.fc3: the final classifier"),
    ("{kind: prune, sparsitty: 0.5}", "stages[0].sparsitty: unknown field"),
    ("{kind: sensitivity, layers: [fc1, conv9]}", "stages[0].layers[1]: 'conv9': no such layer"),
    ("{kind: sensitivity, sparsities: [0.5, 1.2]}", "stages[0].sparsities[1]: must be in"),
    ("{kind: sensitivity, sparsities: []}", "stages[0].sparsities: give at least one"),
    ("{kind: sensitivity, structured: true, layers: [fc3]}", "stages[0].layers[0]: fc3 is the final classifier"),
])
def test_bad_settings_name_the_field(stage, message, tmp_path):
    with pytest.raises(RecipeError) as err:
        _prepare(f"  - {stage}", out_dir=tmp_path)
    assert message in str(err.value)


def test_rewind_init_without_initial_weights(tmp_path):
    # a snapshot folder carries no weights at initialisation
    from prune_helpers import run_recipe
    run, _ = run_recipe("model: sample:digits_mlp\nstages: [{kind: prune, sparsity: 0.2, finetune_epochs: 0}]", tmp_path)
    with pytest.raises(BadInput, match=r"stages\[0\].rewind: this model has no weights at initialisation"):
        _prepare("  - {kind: prune, rewind: init}", model=str(run.session.snapshot_paths[-1]), data="sample:digits",
                 out_dir=tmp_path / "b")


class HardCodedView(nn.Module):
    """Runs fine, but reshapes with hard-coded sizes, so it breaks once channels are removed."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(8, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(self.flatten(x)))
        return self.fc2(h.view(h.shape[0], 4, 8).mean(1))


def _custom_session(module: nn.Module) -> Session:
    data = load_data("sample:digits")
    loaded = LoadedModel(module, "custom", (1, 8, 8), 10, {"base": "custom", "input_shape": [1, 8, 8],
                                                            "num_classes": 10, "transforms": []})
    session = Session(loaded, data)
    session.stage_index = 2
    return session


def test_structured_on_an_untraceable_model_is_rejected():
    session = _custom_session(HardCodedView())
    p = new_stage("prune", structured=True, method="l1", sparsity=0.5).params
    with pytest.raises(RecipeError, match=r"^stages\[2\]\.structured: torch-pruning found no channels it can remove"):
        prune.preflight(session, p)
    prune.preflight(session, new_stage("prune", sparsity=0.5).params)   # unstructured is fine


def test_a_tracing_failure_is_reported(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::weird")
    monkeypatch.setattr(structured, "make_pruner", broken)
    session = _custom_session(HardCodedView())
    with pytest.raises(RecipeError, match=r"stages\[2\]\.structured: tracing .* failed: torch-pruning cannot "
                                          r"handle this model \(RuntimeError: unsupported operator aten::weird\)"):
        prune.preflight(session, new_stage("prune", structured=True, sparsity=0.5).params)


def test_tracing_is_bounded_in_time(monkeypatch):
    release = threading.Event()

    def stuck(*args, **kwargs):
        release.wait(30)                # stuck until the test lets it go: no thread outlives the test
    monkeypatch.setattr(structured, "make_pruner", stuck)
    session = _custom_session(HardCodedView())
    try:
        with pytest.raises(BadInput, match="did not finish within 0 s"):
            structured.check_prunable(session.model, session.example_input(1), 0.5, [], timeout=0.3)
    finally:
        release.set()
