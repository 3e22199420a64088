"""The stage registry: each kind's module registers a checked, typed descriptor; duplicates are errors at import."""
from __future__ import annotations

import dataclasses
import sys
import types

import pytest
from torch import nn

from workbench.core import stages, transforms
from workbench.core.errors import RecipeError
from workbench.core.params import build, param
from workbench.core.recipe import Recipe

CHANGES_NOTHING = {"evaluate", "sensitivity", "export"}


def test_every_module_registers_a_descriptor_of_itself():
    kinds = stages.all_kinds()
    assert [s.kind for s in kinds] == stages.available()
    for stage in kinds:
        module = sys.modules[f"{stages.__name__}.{stage.kind}"]
        assert module.STAGE is stage                                     # registered at the module's end
        assert stage.run.__module__ == module.__name__
        assert stage.title and stage.description
        assert dataclasses.is_dataclass(stage.params)
        assert build(stage.params, {}, "stage", stage.kind) == stage.params()   # every setting has a valid default
        assert stage.changes_model is (stage.kind not in CHANGES_NOTHING)
    assert stages.get("prune").preflight is sys.modules[f"{stages.__name__}.prune"].preflight
    assert stages.get("train").preflight is None


def test_the_descriptor_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        stages.get("train").changes_model = False      # type: ignore[misc]


def test_a_kind_registered_twice_is_an_error():
    train = stages.get("train")
    with pytest.raises(ValueError, match="'train' is registered twice"):
        stages.register(dataclasses.replace(train, title="Another train"))
    assert stages.get("train") is train                   # the first registration stands


def _train_like(**changes) -> stages.StageKind:
    return dataclasses.replace(stages.get("train"), **changes)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"kind": "prune2"}, "a kind is its module's name"),           # run lives in stages.train, not stages.prune2
    ({"kind": "not a name"}, "must be a module name"),
    ({"run": print}, "run must be a function of the module"),
    ({"title": " "}, "title that is not empty"),
    ({"changes_model": 1}, "changes_model must be true or false"),
    ({"preflight": "yes"}, "preflight must be callable"),
    ({"params": dict}, "params must be a dataclass"),
])
def test_a_malformed_descriptor_is_refused(changes, problem):
    with pytest.raises(TypeError, match=problem):
        stages.register(_train_like(**changes))


def test_params_fields_must_carry_param_metadata():
    @dataclasses.dataclass
    class Plain:
        epochs: int = 3
        lr: float = param(0.1, "Learning rate.")

    with pytest.raises(TypeError, match="epochs not made with params.param"):
        stages.register(_train_like(params=Plain))


def test_a_stage_module_that_registers_nothing_is_refused(monkeypatch):
    name = f"{stages.__name__}.ghost"
    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))       # imports, registers nothing
    monkeypatch.setattr(stages, "available", lambda: ["train", "ghost"])
    with pytest.raises(TypeError, match="ghost registers no stage kind"):
        stages.get("ghost")


def test_an_unknown_kind_names_the_field():
    with pytest.raises(RecipeError, match=r"stages\[0\]\.kind: unknown stage kind 'prun' \(did you mean prune\?\)"):
        Recipe.from_dict({"stages": [{"kind": "prun"}]})
    with pytest.raises(RecipeError, match="unknown stage kind"):
        stages.get(["prune"])                                               # type: ignore[arg-type]


def test_a_transform_registered_twice_is_an_error():
    transforms.replay(nn.Linear(2, 2), [{"op": "cast", "dtype": "float16"}])    # loads every replay module
    before = dict(transforms._REPLAYS)
    with pytest.raises(ValueError, match=r"transform 'cast' is registered twice \(workbench\.core\.quantization\.floats\."):
        transforms.register("cast")(lambda model, t: model)
    assert transforms._REPLAYS == before
