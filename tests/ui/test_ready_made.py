"""`make run`'s command (`workbench gui --model sample:digits_mlp --data sample:digits --recipe deep_compression`):
the window opens the ready-made recipe by name, with the style sheet and icon from resources/ and every ready-made
recipe in File ▸ Ready-made recipes."""
from __future__ import annotations

from PySide6.QtWidgets import QApplication

from workbench.core.recipe import Recipe
from workbench.core.resources import ready_made_recipes, style_sheet


def test_make_runs_window_opens_the_ready_made_recipe(make_window, messages):
    w = make_window(recipe="deep_compression")
    assert [s["kind"] for s in w.doc.stages] == [s.kind for s in Recipe.load("deep_compression").stages]
    assert w.doc.path == str(ready_made_recipes()["deep_compression"]) and not messages
    app = QApplication.instance()
    assert app.styleSheet() == style_sheet().read_text() and not app.windowIcon().isNull()
    listed = {a.toolTip() for a in w.menus["ready"].actions()}
    assert listed == {str(p) for p in ready_made_recipes().values()}
