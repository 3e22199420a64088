"""The ready-made pruning recipes validate and run (with fewer epochs here)."""
import dataclasses
from pathlib import Path

import pytest
from prune_helpers import assert_ok

from workbench.core.events import Series
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run

RECIPES = Path(__file__).resolve().parents[1] / "resources" / "recipes"


def _shortened(recipe: Recipe) -> Recipe:
    for spec in recipe.stages:
        changes = {k: min(getattr(spec.params, k), limit)
                   for k, limit in (("finetune_epochs", 1), ("epochs", 1), ("steps", 2))
                   if hasattr(spec.params, k)}
        if hasattr(spec.params, "sparsities"):
            changes["sparsities"] = spec.params.sparsities[-1:]
        spec.params = dataclasses.replace(spec.params, **changes)
    return recipe


@pytest.mark.parametrize("name", ["iterative_magnitude", "structured_channels", "lottery_ticket", "sensitivity"])
def test_recipe_validates_and_runs(name, tmp_path):
    recipe = Recipe.load(RECIPES / f"{name}.yaml")
    assert Recipe.from_text(recipe.to_yaml()).to_dict() == recipe.to_dict()   # round trip
    run = Run(_shortened(recipe), RunOptions(out_dir=tmp_path / "run"))
    events = list(run.events())
    assert_ok(events)
    rows = run.report.data["snapshots"]
    if name == "iterative_magnitude":
        assert rows[1]["sparsity"] > 0.89 and rows[1]["accuracy"] > 0.85
        assert run.report.data["exports"] and all(e["verified"] for e in run.report.data["exports"])
    elif name == "structured_channels":
        assert rows[0]["params"] / rows[-1]["params"] > 3.0 and rows[-1]["flops"] < rows[0]["flops"] / 3
    elif name == "lottery_ticket":
        assert rows[1]["sparsity"] > 0.7 and set(run.session.masks) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    else:
        assert len(rows) == 1
        assert len([e for e in events if isinstance(e, Series)]) == 9   # the 9 convolutions of resnet8, not the fc
