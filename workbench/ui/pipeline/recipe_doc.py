"""The recipe being edited: plain data (dicts), changed only through undoable commands.

Like Orange's workflow model, the document is separate from the widgets that show it. Every edit
replaces the whole (small) state, so undo and redo are exact and the YAML is always what is shown.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import yaml
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ...core import params as P
from ...core import stages
from ...core.data.settings import DataSettings, parse_settings
from ...core.errors import RecipeError
from ...core.pruning.layers import unknown_layer
from ...core.recipe import STAGE_KEYS, TOP_FIELDS, Recipe, new_stage


class EditCommand(QUndoCommand):
    """Replace the document's state; consecutive edits with the same merge key become one step."""

    def __init__(self, doc: RecipeDocument, before: dict, after: dict, text: str, merge_key: Any = None) -> None:
        super().__init__(text)
        self.doc, self.before, self.after, self.merge_key = doc, before, after, merge_key

    def redo(self) -> None:
        self.doc._set_state(self.after)

    def undo(self) -> None:
        self.doc._set_state(self.before)

    def id(self) -> int:
        return 1 if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if isinstance(other, EditCommand) and other.merge_key == self.merge_key:
            self.after = other.after
            return True
        return False


MODEL_OPTIONS = ("arch", "trust", "replace_head")   # what a recipe's `model:` mapping holds besides its spec


def stage_defaults(kind: str) -> dict:
    return P.to_dict(new_stage(kind).params)


class RecipeDocument(QObject):
    """`state = {"top": {name, description, seed, model?, data?}, "stages": [{kind, enabled, label, params}]}`."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.state: dict = {"top": {"seed": 0}, "stages": []}
        self.path: str | None = None
        self.layer_names: list[str] = []   # the open model's prunable layers: layer settings must name one of them

    def set_layer_names(self, names: list[str]) -> None:
        """The open model's prunable layers; settings naming other layers are marked (the run would refuse them)."""
        if list(names) != self.layer_names:
            self.layer_names = list(names)
            self.changed.emit()

    # --- reading -------------------------------------------------------------------------------
    @property
    def stages(self) -> list[dict]:
        return self.state["stages"]

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.state["top"].items() if v not in (None, "")}
        out.setdefault("seed", 0)
        out["stages"] = []
        for s in self.stages:
            item = {"kind": s["kind"]}
            if not s.get("enabled", True):
                item["enabled"] = False
            if s.get("label"):
                item["label"] = s["label"]
            item.update(s["params"])
            out["stages"].append(item)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def recipe(self) -> Recipe:
        """The validated recipe; raises RecipeError naming the first bad field."""
        return Recipe.from_dict(self.to_dict())

    def data_settings(self, spec: str | None = None) -> DataSettings | None:
        """The recipe's data settings (`data:` a spec or a mapping), `spec` replacing the recipe's spec as it does
        for a run (the window passes the open data's spec); the plain `spec` when the recipe's are not valid."""
        raw = self.state["top"].get("data")
        try:
            settings = parse_settings(raw, "data") if raw else None
        except RecipeError:
            settings = None
        if settings is None:
            return DataSettings(spec) if spec else None
        return dataclasses.replace(settings, spec=spec) if spec else settings

    def set_data_settings(self, settings: DataSettings) -> None:
        """The recipe's `data:` (one undo step): a plain spec string when only the spec is set, else the mapping
        without the settings at their defaults."""
        self.edit("set data", lambda s: s["top"].__setitem__("data", settings.spec if settings.plain() else settings.to_dict()))

    def model_entry(self) -> tuple[str, dict]:
        """The recipe's `model:` as (spec, options): a plain spec, or the mapping {spec, arch, trust, replace_head}."""
        raw = self.state["top"].get("model")
        if isinstance(raw, dict):
            spec = raw.get("spec")
            return (spec if isinstance(spec, str) else ""), {k: raw[k] for k in MODEL_OPTIONS if raw.get(k)}
        return (raw if isinstance(raw, str) else ""), {}

    def set_model_entry(self, spec: str, options: dict | None = None) -> None:
        """The recipe's `model:` as Save writes it: the plain spec, or the mapping when it was opened with an
        architecture, trusted, or its head replaced, so the whole model is saved. Not an undo step: it follows
        the open model (which runs use), and undoing an edit must undo that edit."""
        kept = {k: v for k, v in (options or {}).items() if k in MODEL_OPTIONS and v}
        self.state["top"]["model"] = {"spec": spec, **kept} if kept else spec

    def stage_errors(self, i: int) -> dict[str, str]:
        """field name -> message for stage i ('' for problems of the stage as a whole)."""
        s = self.stages[i]
        path = f"stages[{i}]"
        try:
            stage = stages.get(s["kind"], f"{path}.kind")
        except RecipeError as exc:
            return {"": exc.message}
        errors: dict[str, str] = {}
        known = P.param_fields(stage.params)
        names = {f.name for f, _ in known}
        unknown = [k for k in s["params"] if k not in names]
        if unknown:
            errors[""] = f"unknown field(s) for {s['kind']}: {', '.join(unknown)}"
        for f, tp in known:
            if f.name in s["params"]:
                try:
                    P.check_value(f, tp, s["params"][f.name], f"{path}.{f.name}")
                except RecipeError as exc:
                    errors[f.name] = exc.message.removeprefix(f"{path}.{f.name}").lstrip(": .")
        if not errors:
            try:
                P.build(stage.params, s["params"], path, s["kind"])
            except RecipeError as exc:
                name, _, message = exc.message.removeprefix(path + ".").partition(": ")
                errors[name if name in names else ""] = message or exc.message
        for f, _ in known:
            if f.metadata.get("layers") and f.name not in errors:
                message = self._unknown_layers(s["params"].get(f.name))
                if message:
                    errors[f.name] = message
        return errors

    def _unknown_layers(self, value: Any) -> str:
        """A message for the first name that is not a prunable layer of the open model ("" when all are)."""
        if not self.layer_names:
            return ""
        named = list(value) if isinstance(value, (list, dict)) else [value] if isinstance(value, str) and value else []
        for name in named:
            if isinstance(name, str) and name not in self.layer_names:
                return f"{name!r}: {unknown_layer(name, self.layer_names)}"
        return ""

    def all_errors(self) -> list[str]:
        out = []
        for i, s in enumerate(self.stages):
            for name, message in self.stage_errors(i).items():
                out.append(f"stage {i + 1} ({s['kind']}){' ' + name if name else ''}: {message}")
        return out

    # --- loading -------------------------------------------------------------------------------
    @staticmethod
    def state_from_raw(raw: Any) -> dict:
        """Accept any structurally sound recipe (bad values are kept and marked); raise RecipeError otherwise."""
        if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list):
            raise RecipeError("recipe: expected a mapping with a 'stages' list")
        unknown = [k for k in raw if k not in TOP_FIELDS]
        if unknown:
            raise RecipeError(f"{unknown[0]}: unknown recipe field (known: {', '.join(sorted(TOP_FIELDS))})")
        items = []
        for i, item in enumerate(raw["stages"]):
            if not isinstance(item, dict) or "kind" not in item:
                raise RecipeError(f"stages[{i}]: expected a mapping with a 'kind'")
            stages.get(item["kind"], f"stages[{i}].kind")
            params = {**stage_defaults_safe(item["kind"]), **{k: v for k, v in item.items() if k not in STAGE_KEYS}}
            items.append({"kind": item["kind"], "enabled": item.get("enabled", True) is not False,
                          "label": str(item.get("label") or ""), "params": params})
        top = {k: raw[k] for k in TOP_FIELDS if k in raw and k != "stages"}   # every top field is kept on save
        top.setdefault("seed", 0)
        return {"top": top, "stages": items}

    def load_text(self, text: str, source: str = "recipe", path: str | None = None) -> None:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            Recipe.from_text(text, source)  # raises the core's readable message
            raise RecipeError(f"{source}: not valid YAML ({exc})") from None
        state = self.state_from_raw(raw)
        self.undo_stack.clear()
        self._set_state(state)
        self.path = path
        self.undo_stack.setClean()

    def load(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError(f"{path}: cannot read recipe ({exc})") from None
        self.load_text(text, path, path)

    def save(self, path: str) -> None:
        from ...core.io import atomic_write_text
        atomic_write_text(path, self.to_yaml())
        self.path = path
        self.undo_stack.setClean()

    # --- editing (each is one undo step) ----------------------------------------------------------
    def _set_state(self, state: dict) -> None:
        self.state = copy.deepcopy(state)
        self.changed.emit()

    def edit(self, text: str, fn: Callable[[dict], None], merge_key: Any = None) -> None:
        before = copy.deepcopy(self.state)
        after = copy.deepcopy(self.state)
        fn(after)
        if after != before:
            self.undo_stack.push(EditCommand(self, before, after, text, merge_key))

    def add_stage(self, kind: str, at: int | None = None) -> int:
        at = len(self.stages) if at is None else at
        item = {"kind": kind, "enabled": True, "label": "", "params": stage_defaults(kind)}
        self.edit(f"add {kind}", lambda s: s["stages"].insert(at, item))
        return at

    def remove_stage(self, i: int) -> None:
        self.edit(f"remove {self.stages[i]['kind']}", lambda s: s["stages"].pop(i))

    def duplicate_stage(self, i: int) -> None:
        self.edit(f"duplicate {self.stages[i]['kind']}", lambda s: s["stages"].insert(i + 1, copy.deepcopy(s["stages"][i])))

    def move_stage(self, src: int, dst: int) -> None:
        if src == dst or not (0 <= src < len(self.stages)) or not (0 <= dst < len(self.stages)):
            return
        self.edit(f"move {self.stages[src]['kind']}", lambda s: s["stages"].insert(dst, s["stages"].pop(src)))

    def set_enabled(self, i: int, enabled: bool) -> None:
        self.edit(f"{'enable' if enabled else 'disable'} {self.stages[i]['kind']}",
                  lambda s: s["stages"][i].__setitem__("enabled", enabled))

    def set_value(self, i: int, name: str, value: Any) -> None:
        self.edit(f"set {name}", lambda s: s["stages"][i]["params"].__setitem__(name, copy.deepcopy(value)),
                  merge_key=(i, name))

    def set_top(self, name: str, value: Any) -> None:
        self.edit(f"set {name}", lambda s: s["top"].__setitem__(name, value), merge_key=("top", name))

    def replace(self, state: dict, text: str = "replace recipe") -> None:
        self.edit(text, lambda s: s.update(copy.deepcopy(state)))


def stage_defaults_safe(kind: str) -> dict:
    try:
        return stage_defaults(kind)
    except RecipeError:
        return {}
