"""Shared helpers for the pruning tests: run a recipe to the end, build a session by hand."""
from __future__ import annotations

from workbench.core.data import load_data
from workbench.core.events import RunFinished, StageFailed
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run
from workbench.core.session import Session
from workbench.core.specs import load_model


def run_recipe(text: str, tmp_path, **options):
    """(run, events) of a recipe given as YAML text, run to the end in tmp_path."""
    run = Run(Recipe.from_text(text), RunOptions(out_dir=tmp_path / "run", **options))
    events = list(run.events())
    assert isinstance(events[-1], RunFinished)
    return run, events


def assert_rejected(tmp_path, model: str, stages: str, needle: str) -> None:
    """A recipe with `stages` (YAML flow items) on `model` is refused before anything runs, naming `needle`."""
    import pytest

    from workbench.core.errors import RecipeError
    with pytest.raises(RecipeError) as exc:
        recipe = Recipe.from_text(f"model: {model}\nstages: [{stages}]\n")
        list(Run(recipe, RunOptions(out_dir=tmp_path / "run")).events())
    assert needle in str(exc.value)
    assert not (tmp_path / "run").exists()


def assert_ok(events) -> None:
    failed = [e for e in events if isinstance(e, StageFailed)]
    assert not failed, failed[0].message
    assert events[-1].ok


def session_for(model_spec: str, data_spec: str = "sample:digits", stage_index: int = 0, tmp_path=None) -> Session:
    data = load_data(data_spec)
    loaded = load_model(model_spec, data.input_shape, data.num_classes)
    session = Session(loaded, data, out_dir=tmp_path)
    session.stage_index = stage_index
    return session
