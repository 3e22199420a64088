"""`--data` of `workbench inspect` and `workbench export`: a data spec, a recipe file whose `data:` is used (spec and
settings: image size, preprocessing, workers, ...), or such a mapping inline, so a model is measured as a saved
recipe's runs (and the GUI's model panel) measure it:

    workbench inspect model.pth --arch torchvision:resnet18 --data saved_recipe.yaml
    workbench inspect model.pth --arch torchvision:resnet18 --data '{spec: "imagefolder:/data/digits", preprocess: none}'
"""
from __future__ import annotations

from pathlib import Path

from ..core.data.settings import DataSettings, parse_settings
from ..core.errors import BadInput
from ..core.recipe import Recipe

RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


def data_argument(text: str | None) -> str | DataSettings | None:
    """The data settings `--data` names; BadInput (exit 2) naming the field when they are not valid."""
    if not text:
        return text
    if text.lstrip().startswith("{"):
        if "\n" in text:
            raise BadInput("--data: a mapping of data settings is written on one line, e.g. '{spec: sample:digits}'")
        recipe = Recipe.from_text(f"stages: []\ndata: {text}", "--data")
    elif text.lower().endswith(RECIPE_SUFFIXES) and Path(text).expanduser().exists():
        recipe = Recipe.load(Path(text).expanduser())
    else:
        return text
    if recipe.data is None:
        raise BadInput(f"--data {text}: the recipe has no data: to measure with")
    return parse_settings(recipe.data, "data")
