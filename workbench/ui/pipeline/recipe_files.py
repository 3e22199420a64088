"""Opening and saving recipes from the main window (a mixin: it uses the window's document, menus and title)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog

from ...core.data.settings import DataSettings
from ...core.errors import RecipeError
from ...core.resources import in_package, recipe_path
from .. import settings
from ..dialogs import errors
from ..dialogs.open_model import ask_replace_head

if TYPE_CHECKING:                      # the main window this mixin is part of, as the type checker sees it
    from PySide6.QtWidgets import QMainWindow

    from ..qthreading.model_control import ModelControl
    from ..state import AppState
    from .recipe_doc import RecipeDocument
    _Window = QMainWindow
else:
    _Window = object


class RecipeFiles(_Window):
    """File ▸ Open recipe / Save recipe / Save recipe as, ready-made and recent recipes (a mixin of the main window:
    the window sets the attributes and methods below)."""

    doc: RecipeDocument
    state: AppState
    loader: ModelControl

    if TYPE_CHECKING:
        def open_model(self, spec: str, arch: str | None = None, trust: bool = False, replace_head: bool = False) -> None: ...

        def _refresh_menus(self) -> None: ...

        def _update_title(self) -> None: ...

    def open_start_recipe(self, path: str | None) -> None:
        """The recipe asked for, else the last one opened, else a quick train-and-export recipe."""
        last = settings.value("recipe")
        if path:
            self.open_recipe(path)
        elif last and Path(str(last)).exists():
            self.open_recipe(str(last), quiet=True)
        else:
            self.doc.replace({"top": {"name": "quick", "seed": 0}, "stages": []})
            self.doc.add_stage("train")
            self.doc.set_value(0, "epochs", 1)
            self.doc.add_stage("export")
            self.doc.undo_stack.clear()
        if self.apply_remembered_data(self.state.data_spec, other_spec=not path):   # not an edit to undo
            self.doc.undo_stack.clear()

    def apply_remembered_data(self, spec: str | None, other_spec: bool = True) -> bool:
        """The data `spec` is reopened (a restart, a plain spec opened): its remembered settings (workers, image
        size, preprocessing, ...) become the recipe's `data:` unless the recipe has settings of its own for that
        spec (those win; with `other_spec` False, its settings for any spec win: a recipe asked for by name, whose
        data the window asks about). True when they were applied."""
        own = self.doc.data_settings()
        remembered = settings.remembered_data(spec) if spec else None
        if remembered is None or (own is not None and not own.plain() and (own.spec == spec or not other_spec)):
            return False
        self.doc.set_data_settings(remembered)
        return True

    def data_opened(self, spec: str, chosen: DataSettings | None = None) -> None:
        """The data `spec` was opened: the settings chosen for it (Open data) become the recipe's `data:`, else its
        remembered ones (apply_remembered_data); what the recipe then has for it is remembered for Recent and a
        restart."""
        if chosen is not None:
            self.doc.set_data_settings(chosen)
        else:
            self.apply_remembered_data(spec)
        settings.set_value("data", spec)
        current = self.doc.data_settings(spec)
        settings.remember_data(spec, current.to_dict() if current else {})

    def _start_model(self, model: str | None, arch: str | None) -> tuple[str, str | None, bool, bool]:
        """The model asked for (with its architecture), else the recipe's, else the last one open, as it was opened
        (spec, arch, trust: never remembered, replace_head)."""
        if model:
            return model, arch, False, False
        spec, options = self.doc.model_entry()
        if not spec:
            spec = str(settings.value("model", "sample:digits_mlp"))
            options = settings.model_options(spec)
        return spec, arch or options.get("arch"), False, bool(options.get("replace_head"))

    def open_recent_model(self, spec: str) -> None:
        """File ▸ Recent models: reopened as it was opened (its architecture; trusting a file is asked again)."""
        options = settings.model_options(spec)
        self.open_model(spec, options.get("arch"), replace_head=bool(options.get("replace_head")))

    def ask_head(self, spec: str, head: tuple[str, int, int], options: dict) -> None:
        """The user's own checkpoint has a classifier for another class count than the data's: asked, never replaced
        silently. "Replace head" reopens it with a new head (kept in the model options: Save recipe and Recent
        remember it); Cancel changes nothing."""
        if ask_replace_head(self, spec, head):
            self.open_model(spec, options.get("arch"), bool(options.get("trust")), replace_head=True)

    def open_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open recipe", str(self.recipes_folder()),
                                              "Recipes (*.yaml *.yml *.json);;All files (*)")
        if path:
            self.open_recipe(path)

    def open_recipe(self, path: str, quiet: bool = False) -> bool:
        path = str(recipe_path(path))       # a file, or a ready-made recipe by name (`workbench gui --recipe NAME`)
        if not Path(path).exists():
            if not quiet:
                QTimer.singleShot(0, lambda: errors.show_error(self, "Recipe not found",
                                                               f"{path}: no such recipe file. Open another from File ▸ Ready-made recipes."))
            return False
        previous = self.doc.data_settings(self.state.data_spec)   # kept when the open data stays open
        try:
            self.doc.load(path)
        except RecipeError as exc:
            if not quiet:
                errors.show_error(self, "Invalid recipe", exc.message, exc.details)
            return False
        settings.set_value("recipe", str(Path(path).resolve()))
        settings.add_recent("recipes", str(Path(path).resolve()))
        self._refresh_menus()
        self._update_title()
        problems = self.doc.all_errors()
        if problems and not quiet:
            errors.show_error(self, "Recipe has problems", f"{Path(path).name}: {len(problems)} problem(s), marked in "
                              "the pipeline editor:\n" + "\n".join(problems[:5]))
        if not quiet:
            self._recipe_model_question(Path(path).name, previous)
        return True

    def _recipe_model_question(self, name: str, previous=None) -> None:
        """A recipe written for another model (or data) than the one open: ask which to use, never ignore it silently.
        Keeping the open data keeps its settings too (`previous`: workers, image size, preprocessing)."""
        top, state = self.doc.state["top"], self.state
        model, model_options = self.doc.model_entry()
        data = top.get("data").get("spec") if isinstance(top.get("data"), dict) else top.get("data")   # spec or mapping
        data = data if isinstance(data, str) else ""
        other_model = bool(model and state.model_spec and model != state.model_spec)
        other_data = bool(data and state.data_spec and data != state.data_spec)
        if not data and previous is not None and not previous.plain():
            self.doc.set_data_settings(previous)        # a recipe without data: runs on the open data, as it was set
        if not other_model and not other_data:
            return
        wanted = " on ".join(x for x in (model if other_model else "", data if other_data else "") if x)
        current = " on ".join(x for x in (state.model_spec if other_model else "", state.data_spec if other_data else "") if x)
        if errors.ask(self, "Which model?", f"{name} is written for {wanted}; {current} is open.\n\n"
                      f"Open {wanted} for this recipe, or keep {current}? Runs use the open model.",
                      yes=f"Open {wanted}", no=f"Keep {current}"):
            if other_data:
                self.loader.set_data(data, model=model if other_model else None)
            elif other_model:
                # trusting a file is asked, never read from a recipe
                self.open_model(model, model_options.get("arch"), replace_head=bool(model_options.get("replace_head")))
        else:
            if other_data and previous is not None:
                self.doc.set_data_settings(previous)
            self.statusBar().showMessage(f"Keeping {current}: runs of {name} use it (the recipe names {wanted}).", 10000)

    def maybe_save_recipe(self) -> bool:
        """Before closing: unsaved recipe edits are saved, dropped or the close is cancelled, as the user says."""
        if self.doc.undo_stack.isClean() or not self.doc.stages:
            return True
        name = Path(self.doc.path).name if self.doc.path else "The recipe"
        answer = errors.ask_save(self, "Save the recipe?", f"{name} has changes that are not saved. Save them?")
        if answer == "save":
            self.save_recipe()
            return self.doc.undo_stack.isClean()
        return answer == "discard"

    def save_recipe(self) -> None:
        if self.doc.path and Path(self.doc.path).suffix in (".yaml", ".yml"):
            self._save_to(self.doc.path)
        else:
            self.save_recipe_as()

    def save_recipe_as(self) -> None:
        name = Path(self.doc.path).name if self.doc.path else "recipe.yaml"
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", str(self.recipes_folder() / name), "YAML (*.yaml *.yml)")
        if path:
            self._save_to(path)

    def recipes_folder(self) -> Path:
        """Where the recipe dialogs start: the open recipe's folder, else the runs folder's parent, else the user's
        Documents (or home) — never inside the installed workbench (its ready-made recipes)."""
        for folder in (Path(self.doc.path).parent if self.doc.path else None, Path(self.state.runs_dir).parent,
                       Path.home() / "Documents", Path.home()):
            if folder is not None and folder.is_dir() and not in_package(folder):
                return folder
        return Path.home()

    def _save_to(self, path: str) -> None:
        if in_package(Path(path)):
            errors.show_error(self, "Save it elsewhere", f"{path}: inside the installed workbench, which holds its "
                              "ready-made recipes. Save your recipe in your own folder (Documents, your project).")
            return
        if self.state.model_spec:     # the open model, as it was opened (architecture, ...): what runs use
            self.doc.set_model_entry(self.state.model_spec, self.state.model_options)
        try:
            self.doc.save(path)
        except OSError as exc:
            errors.show_error(self, "Cannot save recipe", f"{path}: {exc.strerror or exc}")
            return
        settings.set_value("recipe", str(Path(path).resolve()))   # a restart reopens it: its model and data settings
        settings.add_recent("recipes", str(Path(path).resolve()))
        self._refresh_menus()
        self._update_title()
