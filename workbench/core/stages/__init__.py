"""Stage kinds. Each kind is one module here with:

    KIND: str, TITLE: str, DESCRIPTION: str
    Params: a dataclass built with `workbench.core.params.param`
    run(session, params) -> Iterator[Event]   (mutates session.model; yields often so it can be cancelled)
    preflight(session, params) -> None        (optional: reject before anything runs, raising BadInput)

The registry finds them by name, so a new kind needs no change elsewhere (the GUI form, the recipe
validator and the CLI all read `Params`).
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from types import ModuleType

from ..errors import RecipeError

# Order in which the GUI palette lists them.
ORDER = ["train", "evaluate", "prune", "sensitivity", "distill", "quantize", "restructure", "dynamic", "auto", "export"]


def available() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [k for k in ORDER if k in found] + sorted(found - set(ORDER))


def get(kind: str, path: str = "kind") -> ModuleType:
    kinds = available()
    if kind not in kinds:
        close = difflib.get_close_matches(str(kind), kinds, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(kinds)})"
        raise RecipeError(f"{path}: unknown stage kind {kind!r}{hint}")
    return importlib.import_module(f"{__name__}.{kind}")


def import_all() -> None:
    for kind in available():
        get(kind)
