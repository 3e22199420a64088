"""Files shipped inside the package (found with importlib.resources, so a wheel install has them too):
the sample models and their data (`workbench/samples/`) and the ready-made recipes (`workbench/recipes/`)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_dir(name: str) -> Path:
    """A data folder of the installed package, as a real path (the package is installed unzipped)."""
    return Path(str(resources.files("workbench") / name))


def samples_dir() -> Path:
    return package_dir("samples")


def recipes_dir() -> Path:
    return package_dir("recipes")


def ready_made_recipes() -> dict[str, Path]:
    """name -> path of every recipe shipped with the package (`deep_compression`, ...)."""
    return {p.stem: p for p in sorted(recipes_dir().glob("*.yaml"))}
