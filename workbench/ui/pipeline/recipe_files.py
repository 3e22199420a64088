"""Opening and saving recipes from the main window (a mixin: it uses the window's document, menus and title)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog

from ...core.errors import RecipeError
from .. import settings
from ..dialogs import errors


class RecipeFiles:
    """File ▸ Open recipe / Save recipe / Save recipe as, ready-made and recent recipes."""

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

    def open_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open recipe", str(Path(self.doc.path or ".").parent),
                                              "Recipes (*.yaml *.yml *.json);;All files (*)")
        if path:
            self.open_recipe(path)

    def open_recipe(self, path: str, quiet: bool = False) -> bool:
        if not Path(path).exists():
            if not quiet:
                QTimer.singleShot(0, lambda: errors.show_error(self, "Recipe not found",
                                                               f"{path}: no such recipe file. Open another from File ▸ Ready-made recipes."))
            return False
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
        return True

    def save_recipe(self) -> None:
        if self.doc.path and Path(self.doc.path).suffix in (".yaml", ".yml"):
            self._save_to(self.doc.path)
        else:
            self.save_recipe_as()

    def save_recipe_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", self.doc.path or "recipe.yaml", "YAML (*.yaml *.yml)")
        if path:
            self._save_to(path)

    def _save_to(self, path: str) -> None:
        try:
            self.doc.save(path)
        except OSError as exc:
            errors.show_error(self, "Cannot save recipe", f"{path}: {exc.strerror or exc}")
            return
        settings.add_recent("recipes", str(Path(path).resolve()))
        self._refresh_menus()
        self._update_title()
