"""Data settings are remembered with the data, as the model's options are: quitting without saving the recipe and
restarting (or reopening the data from Open data's recent list) gives the same workers and image size; a recipe's
own settings for that data win; hostile remembered values are ignored."""
import json

import yaml
from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS

from workbench.core.data.settings import DataSettings
from workbench.ui import settings
from workbench.ui.main_window import MainWindow

from .test_image_folder_run import image_folder

MODEL = "arch:mlp:hidden=16"


def _restart(qtbot, tmp_path, **kwargs) -> MainWindow:
    """A new window as `workbench gui` with no --data (and no --model): what was open when it last closed."""
    w = MainWindow(runs_dir=str(tmp_path / "runs"), **kwargs)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.browser.info is not None, timeout=WAIT_MS)
    return w


def _open_folder(w, qtbot, spec: str) -> None:
    dialog = w.open_data_dialog()
    dialog.set_settings(DataSettings(spec, workers=2, image_size=8))
    dialog.accept()
    qtbot.waitUntil(lambda: w.state.data_spec == spec, timeout=WAIT_MS)


def test_data_settings_survive_a_restart_without_saving_the_recipe(make_window, qtbot, messages, tmp_path):
    spec = f"imagefolder:{image_folder(tmp_path / 'images')}"
    w = make_window(model=MODEL)
    _open_folder(w, qtbot, spec)
    assert w.data_settings() == DataSettings(spec, workers=2, image_size=8) and not w.doc.undo_stack.isClean()
    assert settings.data_options(spec) == {"workers": 2, "image_size": 8}
    messages.answer = QMessageBox.StandardButton.No                    # "Don't save" the recipe
    assert w.close()
    assert any(t == "Save the recipe?" for t, _, _ in messages)
    restarted = _restart(qtbot, tmp_path)
    assert restarted.state.data_spec == spec
    assert restarted.data_settings() == DataSettings(spec, workers=2, image_size=8)
    assert restarted.doc.undo_stack.isClean()                           # reopened as it was, not an edit
    # the model panel measured with them: 8x8 images from the folder's 2 classes
    assert restarted.loader.measured == DataSettings(spec, workers=2, image_size=8)
    # back to the bundled data, then the folder again from Open data's recent list: the fields are pre-filled
    restarted.set_data_settings(DataSettings("sample:digits"), restarted.data_settings())
    qtbot.waitUntil(lambda: restarted.state.data_spec == "sample:digits", timeout=WAIT_MS)
    assert restarted.data_settings() == DataSettings("sample:digits")
    dialog = restarted.open_data_dialog()
    index = dialog.combo.findText(spec)
    assert index >= 0
    dialog.combo.setCurrentIndex(index)
    dialog.combo.textActivated.emit(spec)                              # picked from the list
    assert dialog.settings() == DataSettings(spec, workers=2, image_size=8)
    dialog.reject()
    restarted.set_data(spec)                                           # a plain spec reopened: remembered too
    qtbot.waitUntil(lambda: restarted.state.data_spec == spec, timeout=WAIT_MS)
    assert restarted.data_settings() == DataSettings(spec, workers=2, image_size=8)


def test_a_recipes_own_data_settings_win(make_window, qtbot, messages, tmp_path):
    spec = f"imagefolder:{image_folder(tmp_path / 'images')}"
    w = make_window(model=MODEL)
    _open_folder(w, qtbot, spec)
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"name": "own", "seed": 0, "model": MODEL,
                                   "data": {"spec": spec, "workers": 0, "image_size": 16},
                                   "stages": [{"kind": "train", "epochs": 1}]}, sort_keys=False))
    w.close()
    settings.set_value("recipe", str(own))                             # the recipe a restart reopens
    restarted = _restart(qtbot, tmp_path)
    assert restarted.data_settings() == DataSettings(spec, workers=0, image_size=16)
    assert restarted.doc.undo_stack.isClean()
    asked = _restart(qtbot, tmp_path, recipe=str(own))                 # named on the command line: the same
    assert asked.data_settings() == DataSettings(spec, workers=0, image_size=16)


def test_hostile_remembered_data_settings_are_ignored(make_window, qtbot, messages, tmp_path):
    spec = "fake:1x8x8:10:64"
    settings.set_value("recent/data_options", json.dumps({spec: {
        "workers": "2", "image_size": 10**12, "subset": True, "eval_batch_size": None, "trust": True, "evil": [1],
        "val_fraction": float("nan"), "preprocess": {"resize": -1, "crop": 10**9}, "augment": "x" * 10**5,
        "spec": "imagefolder:/", "batch_size": 16}}))
    assert settings.data_options(spec) == {"batch_size": 16}           # only the sane, known one
    for hostile in ("[1, 2]", "not json", "[" * 100_000, json.dumps({spec: [1]}), "x" * (settings.MAX_OPTIONS_TEXT + 1),
                    json.dumps({spec: {"workers": 2, "image_size": 8, "preprocess": {"crop": 100}}})):
        settings.set_value("recent/data_options", hostile)
        assert settings.data_options(spec) in ({}, {"workers": 2, "image_size": 8}), hostile
    # a crop larger than the image size does not go together: nothing of it is used
    assert settings.data_options(spec) == {}
    settings.set_value("recent/data_options", 12345)
    assert settings.data_options(spec) == {} and settings.remembered_data(spec) is None
    # writing keeps only known settings with sane types, bounded to the recent list
    settings.remember_data(spec, {"spec": "other:x", "workers": 2, "image_size": "8", "evil": 1, "trust": True})
    assert settings.data_options(spec) == {"workers": 2}
    for i in range(settings.MAX_RECENT + 3):
        settings.remember_data(f"fake:1x8x8:10:{64 + i}", {"workers": 1})
    assert len(json.loads(settings.value("recent/data_options"))) == settings.MAX_RECENT
    assert settings.data_options(spec) == {}                           # fell off the recent list
    # a window started on hostile remembered settings uses the defaults and says nothing
    settings.set_value("recent/data_options", json.dumps({spec: {"workers": -5, "image_size": "huge"}}))
    w = MainWindow(model=MODEL, data=spec, runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.browser.info is not None, timeout=WAIT_MS)
    assert w.data_settings() == DataSettings(spec) and not messages, messages.texts()
