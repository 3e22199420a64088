"""The whole model is remembered: Save recipe writes `model:` with its architecture, keeping the open model after
a ready-made recipe saves the open one, Recent and a restart reopen a bare state dict with its architecture, and
recipe dialogs never start (or save) inside the installed workbench."""
from pathlib import Path

import torch
import yaml
from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS

from workbench.core.resources import ready_made_recipes, recipes_dir
from workbench.core.specs import load_model
from workbench.ui import settings
from workbench.ui.main_window import MainWindow
from workbench.ui.pipeline.recipe_files import in_package


def _state_dict(tmp_path) -> str:
    path = tmp_path / "weights.pth"
    torch.save(load_model("sample:digits_cnn").module.state_dict(), path)
    return str(path)


def _open_bare(w, qtbot, path: str) -> None:
    w.open_model(path, "arch:lenet5")
    qtbot.waitUntil(lambda: w.model_spec == path, timeout=WAIT_MS)


def test_save_recipe_writes_the_model_with_its_architecture(make_window, qtbot, messages, tmp_path):
    w = make_window()
    path = _state_dict(tmp_path)
    _open_bare(w, qtbot, path)
    out = tmp_path / "mine.yaml"
    w._save_to(str(out))
    saved = yaml.safe_load(out.read_text())
    assert saved["model"] == {"spec": path, "arch": "arch:lenet5"}     # trust not set: not written
    assert [s["kind"] for s in saved["stages"]] == ["train", "export"]
    assert w.doc.model_entry() == (path, {"arch": "arch:lenet5"}) and w.doc.undo_stack.isClean()


def test_keep_my_model_with_a_ready_made_recipe_saves_my_model(make_window, qtbot, messages, tmp_path):
    w = make_window()
    path = _state_dict(tmp_path)
    _open_bare(w, qtbot, path)
    messages.answer = QMessageBox.StandardButton.No          # "Keep <my model>"
    name, ready = next((n, p) for n, p in ready_made_recipes().items() if yaml.safe_load(p.read_text()).get("model"))
    assert w.open_recipe(str(ready))
    assert any(t == "Which model?" for t, _, _ in messages) and w.model_spec == path
    out = tmp_path / f"{name}_mine.yaml"
    w._save_to(str(out))
    assert yaml.safe_load(out.read_text())["model"] == {"spec": path, "arch": "arch:lenet5"}


def test_recent_and_a_restart_reopen_the_state_dict_with_its_architecture(make_window, qtbot, messages, tmp_path):
    w = make_window()
    path = _state_dict(tmp_path)
    _open_bare(w, qtbot, path)
    assert settings.recent("models")[0] == path and settings.model_options(path) == {"arch": "arch:lenet5"}
    w.open_model("sample:digits_mlp")
    qtbot.waitUntil(lambda: w.model_spec == "sample:digits_mlp", timeout=WAIT_MS)
    item = next(a for a in w.menus["recent_models"].actions() if a.text() == path)
    item.trigger()                                            # File ▸ Recent models ▸ weights.pth
    qtbot.waitUntil(lambda: w.model_spec == path, timeout=WAIT_MS)
    assert w.state.model_options["arch"] == "arch:lenet5" and not messages
    w.close()
    restarted = MainWindow(data="sample:digits", runs_dir=str(tmp_path / "runs"))     # no --model: the last one
    qtbot.addWidget(restarted)
    qtbot.waitUntil(lambda: restarted.model_spec == path, timeout=WAIT_MS)
    assert restarted.state.model_options["arch"] == "arch:lenet5" and restarted.browser.info is not None
    assert not messages


def test_recipe_dialogs_stay_out_of_the_installed_package(make_window, qtbot, messages, tmp_path):
    w = make_window()
    w.doc.path = str(next(iter(ready_made_recipes().values())))      # a ready-made recipe is open
    folder = w.recipes_folder()
    assert not in_package(folder) and in_package(recipes_dir()) and not in_package(tmp_path)
    before = set(ready_made_recipes())
    w._save_to(str(recipes_dir() / "my_recipe.yaml"))                # refused with the reason, nothing written
    assert not (recipes_dir() / "my_recipe.yaml").exists() and set(ready_made_recipes()) == before
    assert messages[-1][0] == "Save it elsewhere" and "ready-made" in messages[-1][1]
    assert Path(w.recipes_folder()) != recipes_dir()
