"""Preprocessing in the GUI: Open data edits it (the model's own, set here, or none) through the recipe's parser, the
recipe keeps it, the Model panel measures with it and says what it is and where it came from; keeping the open data
when a ready-made recipe is opened keeps its settings."""
import yaml
from PySide6.QtWidgets import QDialogButtonBox
from waits import WAIT_MS

from workbench.core.data.preprocess import NONE, PreprocessSettings
from workbench.core.data.settings import DataSettings, parse_settings
from workbench.core.layer_data import open_model
from workbench.core.recipe import Recipe
from workbench.ui.dialogs.open_data import OpenDataDialog

from .test_image_folder_run import image_folder

MODEL = "arch:mlp:hidden=8"


def ok_enabled(dialog) -> bool:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()


def test_the_dialog_edits_preprocessing_with_the_recipes_parser(qtbot):
    chosen = DataSettings("imagefolder:/data/x", workers=2, preprocess=PreprocessSettings(37, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)))
    dialog = OpenDataDialog(current=chosen)
    qtbot.addWidget(dialog)
    assert dialog.settings() == chosen and dialog.pre_mode.currentData() == "set"
    assert (dialog.resize_side.value(), dialog.crop.value(), dialog.mean.text()) == (37, 32, "0.5, 0.4, 0.3")
    dialog.pre_mode.setCurrentIndex(dialog.pre_mode.findData(NONE))           # none: the fields do not apply
    assert dialog.settings() == DataSettings("imagefolder:/data/x", workers=2, preprocess=NONE)
    assert not dialog.resize_side.isEnabled() and not dialog.mean.isEnabled()
    dialog.spins["image_size"].setValue(32)                                   # contradicts none: said, OK disabled
    assert dialog.settings() is None and not ok_enabled(dialog)
    assert dialog.error.text().startswith("data.image_size: preprocess is none")
    dialog.spins["image_size"].setValue(dialog.spins["image_size"].minimum())
    dialog.pre_mode.setCurrentIndex(dialog.pre_mode.findData("auto"))         # the model's own, else the default
    assert dialog.settings().preprocess is None and dialog.settings().to_dict() == {"spec": "imagefolder:/data/x", "workers": 2}
    dialog.pre_mode.setCurrentIndex(dialog.pre_mode.findData("set"))
    assert dialog.resize_side.isEnabled()
    for field, text, message in ((dialog.mean, "0.5, x", "data.preprocess.mean: expected a list of 1 to 4 numbers"),
                                 (dialog.mean, "0.5", "data.preprocess.std: 3 value(s) but mean has 1")):
        field.setText(text)
        assert dialog.settings() is None and not ok_enabled(dialog) and dialog.error.text().startswith(message)
    dialog.std.setText("0.25")
    dialog.crop.setValue(40)
    assert dialog.error.text().startswith("data.preprocess.crop: 40 is larger than resize 37")
    dialog.crop.setValue(0)                                                   # auto
    assert dialog.settings().preprocess == PreprocessSettings(37, None, (0.5,), (0.25,)) and ok_enabled(dialog)


def test_the_model_panel_measures_with_the_settings_and_shows_the_preprocessing(make_window, qtbot, messages, tmp_path):
    spec = f"imagefolder:{image_folder(tmp_path / 'images')}"
    w = make_window(model=MODEL)
    dialog = w.open_data_dialog()
    dialog.combo.setCurrentText(spec)
    dialog.spins["workers"].setValue(0)
    dialog.spins["image_size"].setValue(16)
    dialog.accept()
    qtbot.waitUntil(lambda: w.browser.info is not None and w.browser.info.get("data") == spec, timeout=WAIT_MS)
    assert not messages, messages.texts()
    settings = DataSettings(spec, workers=0, image_size=16)
    assert w.doc.data_settings(w.data_spec) == settings
    info = w.browser.info
    assert info["input_shape"] == [3, 16, 16] and info["accuracy"] == open_model(MODEL, settings)["accuracy"]
    text = w.browser.totals.text()
    assert "input 3×16×16" in text
    assert ("<b>preprocessing</b> (yours; the rest the default: ImageNet's mean and std, a resize to size / 0.875): "
            "resize 18, centre crop 16 (bilinear); mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)") in text
    # the same spec with other settings: measured again (none: the images' own 8 px)
    again = w.open_data_dialog()
    again.spins["image_size"].setValue(again.spins["image_size"].minimum())
    again.pre_mode.setCurrentIndex(again.pre_mode.findData(NONE))
    again.accept()
    qtbot.waitUntil(lambda: w.browser.info["input_shape"] == [3, 8, 8], timeout=WAIT_MS)
    assert "<b>preprocessing</b> (none: the tensors are ready): pixels scaled to [0, 1]" in w.browser.totals.text()
    # Save recipe keeps it, as the mapping `workbench run` reads
    w._save_to(str(tmp_path / "saved.yaml"))
    saved = yaml.safe_load((tmp_path / "saved.yaml").read_text())["data"]
    assert saved == {"spec": spec, "workers": 0, "preprocess": "none"}
    assert parse_settings(Recipe.load(tmp_path / "saved.yaml").data) == DataSettings(spec, workers=0, preprocess=NONE)
    w.doc.undo_stack.undo()                                                    # undone: measured on the settings before
    qtbot.waitUntil(lambda: w.browser.info["input_shape"] == [3, 16, 16], timeout=WAIT_MS)


def test_keeping_the_open_data_for_a_ready_made_recipe_keeps_its_settings(make_window, qtbot, messages, tmp_path):
    spec = f"imagefolder:{image_folder(tmp_path / 'images')}"
    w = make_window(model=MODEL)
    chosen = DataSettings(spec, workers=0, image_size=16, preprocess=PreprocessSettings(mean=(0.5,), std=(0.25,)))
    w.set_data_settings(chosen, w.data_settings())
    qtbot.waitUntil(lambda: w.data_spec == spec and w.browser.info.get("data") == spec, timeout=WAIT_MS)
    ready = tmp_path / "ready.yaml"                          # as the ready-made recipes: the sample model and digits
    ready.write_text(yaml.safe_dump({"name": "ready", "model": "sample:digits_mlp", "data": "sample:digits",
                                     "stages": [{"kind": "evaluate"}]}))
    assert w.open_recipe(str(ready))                         # the question is answered "keep" (No)
    assert messages and messages[-1][0] == "Which model?"
    assert w.data_spec == spec and w.data_settings() == chosen
    assert w.doc.recipe().data == chosen.to_dict()           # Save recipe and runs get the kept settings
