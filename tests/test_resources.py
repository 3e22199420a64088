"""The design card's layout: `sample_models/` and `resources/` at the top of the repository, found through one lookup
(workbench/core/resources.py) that the editable install maps onto these folders and the wheel carries inside the package."""
from __future__ import annotations

import tomllib
from pathlib import Path

from cli_helpers import ROOT
from setuptools import find_packages

from workbench.core import resources
from workbench.core.recipe import Recipe


def test_the_checkout_serves_the_top_level_folders():
    assert resources.samples_dir() == ROOT / "sample_models"
    assert resources.recipes_dir() == ROOT / "resources" / "recipes"
    assert resources.style_sheet() == ROOT / "resources" / "style.qss" and "QMainWindow" in resources.style_sheet().read_text()
    assert resources.icon("workbench").read_text().startswith("<svg")
    assert not (ROOT / "workbench" / "samples").exists() and not (ROOT / "workbench" / "recipes").exists()


def test_ready_made_recipes_by_name():
    recipes = resources.ready_made_recipes()
    assert set(recipes) == {p.stem for p in (ROOT / "resources" / "recipes").glob("*.yaml")} and "deep_compression" in recipes
    assert resources.recipe_path("deep_compression") == ROOT / "resources" / "recipes" / "deep_compression.yaml"
    assert resources.recipe_path("no_such_recipe") == Path("no_such_recipe")        # the error names what was asked for
    assert Recipe.load("deep_compression").name == "Deep Compression"


def test_every_package_is_listed_for_the_wheel():
    """pyproject.toml lists the packages (the two mapped folders cannot be found by packages.find): none left out."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert listed == set(find_packages(str(ROOT), include=["workbench*"])) | {"workbench.sample_models", "workbench.resources"}
    assert config["package-dir"] == {"workbench.sample_models": "sample_models", "workbench.resources": "resources"}
