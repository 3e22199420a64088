"""Files shipped with the workbench, found through one lookup (importlib.resources) whatever the install.

They live at the top of the repository, beside `workbench/`: `sample_models/` (the sample models and the digits
data) and `resources/` (the ready-made recipes in `recipes/`, the GUI's `style.qss` and `icons/`). pyproject.toml
maps both into the package as `workbench.sample_models` and `workbench.resources` (package-dir), so the wheel and
`pip install .` carry them inside the installed package, and an editable install's finder maps the same names onto
the checkout's folders.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_MODELS = "workbench.sample_models"
RESOURCES = "workbench.resources"


def package_dir(package: str) -> Path:
    """A data package of the installed workbench as a real folder (the package is installed unzipped)."""
    return Path(str(resources.files(package)))


def samples_dir() -> Path:
    return package_dir(SAMPLE_MODELS)


def recipes_dir() -> Path:
    return package_dir(RESOURCES) / "recipes"


def style_sheet() -> Path:
    """The GUI's Qt style sheet."""
    return package_dir(RESOURCES) / "style.qss"


def icon(name: str) -> Path:
    """An icon of the GUI (`icons/NAME.svg`)."""
    return package_dir(RESOURCES) / "icons" / f"{name}.svg"


def ready_made_recipes() -> dict[str, Path]:
    """name -> path of every recipe shipped with the workbench (`deep_compression`, ...)."""
    return {p.stem: p for p in sorted(recipes_dir().glob("*.yaml"))}


def recipe_path(text: str | Path) -> Path:
    """A recipe file as given, or the ready-made recipe of that name (`deep_compression`: no such file, no suffix)."""
    path = Path(text)
    if not path.exists() and not path.suffix:
        return ready_made_recipes().get(str(path), path)
    return path


def in_package(path: Path) -> bool:
    """Whether `path` is inside the installed workbench or its shipped data (ready-made recipes, samples): no user
    file (a saved recipe, an export) is written there."""
    target = path.resolve()
    roots = (Path(__file__).resolve().parents[1], package_dir(RESOURCES), package_dir(SAMPLE_MODELS))
    return any(target == r.resolve() or r.resolve() in target.parents for r in roots)
