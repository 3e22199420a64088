"""Recipes: YAML/JSON round trip and validation errors that name the field."""
import pytest

from workbench.core.errors import RecipeError
from workbench.core.recipe import Recipe, new_stage


def test_yaml_and_json_round_trip(tmp_path):
    r = Recipe([new_stage("train", epochs=2, lr=0.01), new_stage("evaluate"),
                new_stage("export", formats=["safetensors", "state_dict"])],
               model="sample:digits_mlp", data="sample:digits", seed=3, name="demo")
    r.stages[1].enabled = False
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"r{suffix}"
        r.save(path)
        again = Recipe.load(path)
        assert again.to_dict() == r.to_dict()
    assert again.stages[0].params.epochs == 2 and again.stages[0].params.lr == 0.01
    assert again.stages[1].enabled is False


def test_defaults_fill_missing_fields():
    r = Recipe.from_text("stages:\n  - kind: train\n")
    assert r.stages[0].params.epochs == 3 and r.stages[0].params.optimizer == "adam"
    assert r.seed == 0 and r.model is None


@pytest.mark.parametrize("text,message", [
    ("stages:\n  - kind: trian\n", "stages[0].kind: unknown stage kind 'trian' (did you mean train?)"),
    ("stages:\n  - kind: train\n    epocs: 3\n", "stages[0].epocs: unknown field for train (did you mean epochs?)"),
    ("stages:\n  - kind: train\n    epochs: -1\n", "stages[0].epochs: must be in [0, 1000], got -1"),
    ("stages:\n  - kind: train\n    epochs: 2.5\n", "stages[0].epochs: expected an integer, got 2.5"),
    ("stages:\n  - kind: train\n    optimizer: rmsprop\n", "stages[0].optimizer: must be one of sgd, adam, adamw, got 'rmsprop'"),
    ("stages:\n  - kind: evaluate\n  - kind: train\n    lr: 0\n", "stages[1].lr: must be in (0.0, 10.0], got 0"),
    ("stages:\n  - kind: export\n    formats: [onnx9]\n", "stages[0].formats: must be one of"),
    ("stages:\n  - kind: train\n    enabled: maybe\n", "stages[0].enabled: expected true or false"),
    ("stages: {}\n", "stages: expected a list"),
    ("seed: -2\nstages: []\n", "seed: must be a non-negative integer"),
    ("modle: x\nstages: []\n", "modle: unknown recipe field"),
    ("stages: [\n", "not valid YAML at line"),
    ("- 1\n- 2\n", "recipe: expected a mapping"),
])
def test_invalid_recipes_name_the_field(text, message):
    with pytest.raises(RecipeError) as exc:
        Recipe.from_text(text)
    assert str(exc.value).startswith(message) or message in str(exc.value), str(exc.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="cannot read recipe"):
        Recipe.load(tmp_path / "nope.yaml")


def test_shipped_recipes_validate_and_load_by_name():
    from workbench.core.resources import ready_made_recipes
    recipes = ready_made_recipes()
    assert len(recipes) >= 9 and "deep_compression" in recipes
    for name, path in recipes.items():
        assert Recipe.load(name).to_dict() == Recipe.load(path).to_dict()


def test_data_may_be_a_mapping_of_settings():
    text = "data: {spec: sample:digits, val_fraction: 0.2, augment: none, batch_size: 32}\nstages: []\n"
    recipe = Recipe.from_text(text)
    assert recipe.data["val_fraction"] == 0.2 and Recipe.from_text(recipe.to_yaml()).data == recipe.data
    with pytest.raises(RecipeError, match=r"data\.val_fraction: must be in"):
        Recipe.from_text("data: {spec: sample:digits, val_fraction: 1.5}\nstages: []\n")


def test_settings_declare_when_they_matter():
    from workbench.core import params as P
    from workbench.core import stages
    meta = {"when": {"method": ["lowrank", "depthwise"], "structured": True}}
    assert P.applies(meta, {"method": "depthwise", "structured": True})
    assert not P.applies(meta, {"method": "fold_bn", "structured": True})
    assert not P.applies(meta, {"method": "lowrank", "structured": False})
    assert P.applies({"when": None}, {}) and P.applies({}, {"method": "x"})
    # every `when` names real fields and, where the field has choices, real choices
    for kind in stages.available():
        fields = {f.name: f for f, _ in P.param_fields(stages.get(kind).params)}
        for f in fields.values():
            for name, wanted in (f.metadata.get("when") or {}).items():
                assert name in fields, (kind, f.name, name)
                choices = fields[name].metadata.get("choices")
                for w in (wanted if isinstance(wanted, list) else [wanted]):
                    assert not choices or w in choices, (kind, f.name, w)
