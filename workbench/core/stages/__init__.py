"""Stage kinds. Each kind is one module here that ends by registering its descriptor:

    STAGE = register(StageKind(kind="prune", title="Prune", description=DESCRIPTION, params=Params, run=run,
                               preflight=preflight))

    params: a dataclass built with `workbench.core.params.param`
    run(session, params) -> Iterator[Event]   (mutates session.model; yields often so it can be cancelled)
    preflight(session, params) -> None        (optional: reject before anything runs, raising BadInput)
    changes_model=False                       (for stages that leave the model alone: no snapshot after them)
    takes(params, state) -> str | None        (why it cannot take a model in `state`, "float" or "int8", and the fix;
                                               default: float models only)
    leaves(params, state, runtime) -> str     (the state it leaves the model in on the run's deploy runtime;
                                               default: as it came)

The registry finds the modules by name and checks each descriptor when its module is imported (its kind is the
module's name, `params` is a dataclass of `param` fields, `run` is callable, a kind registers once), so a new kind
needs no change elsewhere: the GUI form, the recipe validator, the runner and the CLI all read the descriptor.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import RecipeError

if TYPE_CHECKING:
    from ..events import Event
    from ..session import Session

# Order in which the GUI palette lists them.
ORDER = ["train", "evaluate", "prune", "sensitivity", "distill", "quantize", "restructure", "dynamic", "auto", "export"]

StageRun = Callable[["Session", Any], Iterator["Event"]]
Preflight = Callable[["Session", Any], None]
Takes = Callable[[Any, str], "str | None"]     # (params, model state) -> why the stage cannot take it; None: it can
Leaves = Callable[[Any, str, str], str]        # (params, model state in, the run's runtime) -> model state out

FLOAT, INT8 = "float", "int8"   # the model states the preflight's order check follows through a recipe


def float_only(params: Any, state: str) -> str | None:
    """The default `takes`: stages that train or edit float weights cannot take a torch.ao int8 model."""
    if state == FLOAT:
        return None
    return ("a torch.ao int8 model has packed int8 weights, no float weights to train or edit and no gradients; "
            "put this stage before Quantize (or use quantize qat to train with int8 in the loop)")


def any_state(params: Any, state: str) -> str | None:
    return None


@dataclasses.dataclass(frozen=True)
class StageKind:
    """What the runner, the recipe validator, the GUI and the CLI know of a stage kind."""
    kind: str                     # the module's name, as recipes spell it
    title: str                    # what the GUI's palette and stage cards show
    description: str              # a sentence or two: tool tips and the form's header
    params: type                  # the settings dataclass (fields made with `params.param`)
    run: StageRun
    changes_model: bool = True    # False: the model is left alone, so no snapshot follows the stage
    preflight: Preflight | None = None
    takes: Takes = float_only      # the order check: which model states (FLOAT, INT8) the stage can be given
    leaves: Leaves | None = None   # the state it leaves the model in (None: as it came)


_REGISTERED: dict[str, StageKind] = {}


def register(stage: StageKind) -> StageKind:
    """Called once at the end of each stage module. A descriptor that does not describe its module, or a kind
    registered twice, is an error when the module is imported."""
    problem = _problem(stage)
    if problem:
        raise TypeError(f"stage kind {stage.kind!r}: {problem}")
    if stage.kind in _REGISTERED:
        raise ValueError(f"stage kind {stage.kind!r} is registered twice")
    _REGISTERED[stage.kind] = stage
    return stage


def _problem(stage: StageKind) -> str | None:
    """Why `stage` is not a well-formed descriptor of the module `stages.<kind>`; None when it is."""
    if not isinstance(stage.kind, str) or not stage.kind.isidentifier():
        return "the kind must be a module name"
    if not callable(stage.run) or getattr(stage.run, "__module__", None) != f"{__name__}.{stage.kind}":
        return f"run must be a function of the module {__name__}.{stage.kind} (a kind is its module's name)"
    if stage.preflight is not None and not callable(stage.preflight):
        return "preflight must be callable or None"
    if not (isinstance(stage.title, str) and stage.title.strip() and isinstance(stage.description, str)):
        return "title and description must be text (a title that is not empty)"
    if not callable(stage.takes) or (stage.leaves is not None and not callable(stage.leaves)):
        return "takes must be callable, leaves callable or None"
    if not isinstance(stage.changes_model, bool):
        return "changes_model must be true or false"
    if not (isinstance(stage.params, type) and dataclasses.is_dataclass(stage.params)):
        return "params must be a dataclass"
    plain = [f.name for f in dataclasses.fields(stage.params) if "help" not in f.metadata]
    if plain:
        return f"params: {', '.join(plain)} not made with params.param (the form and the validator need its metadata)"
    return None


def available() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [k for k in ORDER if k in found] + sorted(found - set(ORDER))


def get(kind: str, path: str = "kind") -> StageKind:
    """The descriptor of a stage kind, importing its module; `path` names the recipe field in the error."""
    if isinstance(kind, str) and kind in _REGISTERED:
        return _REGISTERED[kind]
    kinds = available()
    if kind not in kinds:
        close = difflib.get_close_matches(str(kind), kinds, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(kinds)})"
        raise RecipeError(f"{path}: unknown stage kind {kind!r}{hint}")
    importlib.import_module(f"{__name__}.{kind}")
    if kind not in _REGISTERED:
        raise TypeError(f"{__name__}.{kind} registers no stage kind (it must end with STAGE = register(StageKind(...)))")
    return _REGISTERED[kind]


def all_kinds() -> list[StageKind]:
    """Every stage kind's descriptor, in the palette's order."""
    return [get(kind) for kind in available()]


def label(kind: str, params: Any) -> str:
    """A stage as messages name it: its kind and its first setting when that is a name ("quantize int8_static",
    "export onnx, state_dict")."""
    fields = dataclasses.fields(params) if dataclasses.is_dataclass(params) else ()
    first = getattr(params, fields[0].name, None) if fields else None
    if isinstance(first, list) and all(isinstance(v, str) for v in first):
        first = ", ".join(first)
    return f"{kind} {first}" if isinstance(first, str) and first else kind


def check_order(steps: list[tuple[int, str, Any]], state: str = FLOAT, runtime: str = "eager") -> None:
    """Refuse a stage that cannot follow an earlier one (`steps`: index, kind, params of each enabled stage), naming
    both stages, why and the fix; `state` is the loaded model's (INT8 for an int8 snapshot); `runtime` the run's
    deploy runtime (an `auto` stage's int8 on onnxruntime is onnxruntime's, at export: its model stays float)."""
    made_by = "the loaded model (torch.ao int8)" if state == INT8 else "the model"
    for i, kind, params in steps:
        desc = get(kind)
        why = desc.takes(params, state)
        if why:
            raise RecipeError(f"stages[{i}] ({label(kind, params)}) cannot follow {made_by}: {why}")
        after = desc.leaves(params, state, runtime) if desc.leaves is not None else state
        if after != state:
            state, made_by = after, f"stages[{i}] ({label(kind, params)})"


def import_all() -> None:
    all_kinds()
