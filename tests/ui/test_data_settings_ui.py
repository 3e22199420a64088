"""Open data edits every data setting; the settings are the recipe's `data:` and the GUI's runs use them; the runs
table, the ratio plot and the run log show val and test accuracy side by side."""
import json
from pathlib import Path

import yaml
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from waits import WAIT_MS

from workbench.core.data import load_data
from workbench.core.data.settings import DataSettings
from workbench.core.recipe import Recipe
from workbench.ui import formatting as F
from workbench.ui.dialogs.open_data import OpenDataDialog
from workbench.ui.widgets.runs_view import COLUMNS, PATH_ROLE, RunsView

from .helpers import wait_run

VAL, TEST = COLUMNS.index("Val acc"), COLUMNS.index("Test acc")
CHOSEN = DataSettings("sample:digits", val_fraction=0.2, subset=500)


def ok_button(dialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def snapshot_item(view, path):
    path = str(Path(path).resolve())
    return next(run.child(i) for run in view.runs.values() for i in range(run.childCount())
                if run.child(i).data(0, PATH_ROLE) == path)


def test_the_dialog_round_trips_every_setting(qtbot):
    full = DataSettings("fake:3x32x32:10:256", val_fraction=0.25, augment="standard", batch_size=32, eval_batch_size=128,
                        workers=0, image_size=48, subset=100)
    dialog = OpenDataDialog(current=full)
    qtbot.addWidget(dialog)
    assert dialog.settings() == full and ok_button(dialog).isEnabled()
    assert dialog.val_fraction.maximum() == 0.9 and dialog.val_fraction.singleStep() == 0.05
    assert "SVHN" in dialog.augment.toolTip() and "image folders" in dialog.augment.toolTip()
    # each spin box's special value is None: the default batch, auto workers, the model's size, all samples
    for name, text in (("batch_size", "default"), ("workers", "auto"), ("image_size", "model's"), ("subset", "all")):
        box = dialog.spins[name]
        box.setValue(box.minimum())
        assert box.text() == text
    dialog.val_fraction.setValue(0.1)
    dialog.augment.setCurrentText("none")
    dialog.spins["eval_batch_size"].setValue(256)
    assert dialog.settings() == DataSettings("fake:3x32x32:10:256") and dialog.settings().plain()
    # fields set one by one -> the settings the core reads
    dialog.combo.setCurrentText("sample:digits")
    dialog.val_fraction.setValue(0.2)
    dialog.spins["subset"].setValue(500)
    dialog.spins["workers"].setValue(2)
    assert dialog.settings() == DataSettings("sample:digits", val_fraction=0.2, workers=2, subset=500)
    # invalid ones are refused: said under the fields, OK disabled
    dialog.combo.setCurrentText("  ")
    assert dialog.settings() is None and not ok_button(dialog).isEnabled()
    assert not dialog.error.isHidden() and "data.spec" in dialog.error.text()
    dialog.combo.setCurrentText("digits")
    assert dialog.settings() is None and "PREFIX:VALUE" in dialog.error.text()
    dialog.combo.setCurrentText("sample:digits")
    assert dialog.settings() is not None and ok_button(dialog).isEnabled() and dialog.error.isHidden()
    # a plain spec still opens the dialog as before
    plain = OpenDataDialog(current="sample:digits")
    qtbot.addWidget(plain)
    assert plain.spec() == "sample:digits" and plain.settings() == DataSettings("sample:digits")


def test_settings_become_the_recipe_and_a_gui_run_uses_them(make_window, qtbot, messages, tmp_path):
    w = make_window(stages=[{"kind": "train", "epochs": 1}])
    dialog = w.open_data_dialog()
    assert dialog.settings() == DataSettings("sample:digits")        # pre-filled from the open data
    dialog.val_fraction.setValue(0.2)
    dialog.spins["subset"].setValue(500)
    dialog.accept()                                                   # checked by loading, then written
    qtbot.waitUntil(lambda: "data" in w.doc.state["top"], timeout=WAIT_MS)
    assert w.doc.state["top"]["data"] == {"spec": "sample:digits", "val_fraction": 0.2, "subset": 500}
    assert Recipe.from_text(w.doc.to_yaml()).data == CHOSEN.to_dict()
    w.doc.undo_stack.undo()                                           # one undo step
    assert "data" not in w.doc.state["top"]
    w.doc.undo_stack.redo()
    again = w.open_data_dialog()                                      # opened again: the recipe's settings
    assert again.settings() == CHOSEN
    again.reject()
    # Save recipe keeps them, as the mapping the command line reads
    w._save_to(str(tmp_path / "saved.yaml"))
    assert yaml.safe_load((tmp_path / "saved.yaml").read_text())["data"] == CHOSEN.to_dict()
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    report = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert report["status"] == "finished"
    # what the core does: val is carved from the whole train split first (20% of it), then the subset keeps 500
    # of the rest for training; test is untouched
    default = load_data("sample:digits").splits
    whole = default["train"] + default["val"]
    assert report["splits"] == {"train": 500, "val": round(0.2 * whole), "test": default["test"]}
    assert report["data_settings"]["val_fraction"] == 0.2 and report["data_settings"]["subset"] == 500
    assert report["data_settings"]["train"] == 500
    # the runs table shows val and test for each snapshot, as report.json has them
    assert len(report["snapshots"]) == 2
    for snap in report["snapshots"]:
        assert snap["val_accuracy"] is not None
        item = snapshot_item(w.runs, Path(w.control.out_dir) / snap["path"])
        assert item.text(VAL) == F.percent(snap["val_accuracy"], 2)
        assert item.text(TEST) == F.percent(snap["accuracy"], 2)
        line = f"val {F.percent(snap['val_accuracy'], 2)}, test {F.percent(snap['accuracy'], 2)}"
        assert line in w.run_panel.log.toPlainText()
    # the ratio plot: test filled, val as rings
    assert w.plots.scatter.points().size == 2 and w.plots.ratio.val_scatter.points().size == 2
    assert "test accuracy" in w.plots.ratio.plot.getPlotItem().getAxis("left").labelText


def test_a_new_spec_is_loaded_before_it_goes_into_the_recipe(make_window, qtbot, messages):
    w = make_window(stages=[{"kind": "evaluate"}])
    w.set_data_settings(DataSettings("sample:nope", val_fraction=0.3), DataSettings("sample:digits"))
    qtbot.waitUntil(lambda: bool(messages), timeout=WAIT_MS)
    assert "Cannot open data" in messages.texts() and "data" not in w.doc.state["top"]
    w.set_data_settings(DataSettings("fake:1x8x8:10:64", val_fraction=0.3), DataSettings("sample:digits"))
    qtbot.waitUntil(lambda: w.data_spec == "fake:1x8x8:10:64", timeout=WAIT_MS)
    assert w.doc.state["top"]["data"] == {"spec": "fake:1x8x8:10:64", "val_fraction": 0.3}
    w.set_data_settings(DataSettings("fake:1x8x8:10:64"), DataSettings("fake:1x8x8:10:64", val_fraction=0.3))
    qtbot.waitUntil(lambda: w.doc.state["top"]["data"] == "fake:1x8x8:10:64", timeout=WAIT_MS)   # only the spec: a plain string


def test_a_recipe_with_a_data_mapping_prefills_the_dialog(make_window, tmp_path, messages):
    raw = {"name": "mapped", "seed": 0, "data": {"spec": "sample:digits", "val_fraction": 0.3, "augment": "standard",
                                                 "batch_size": 16, "image_size": 8},
           "stages": [{"kind": "evaluate"}]}
    path = tmp_path / "mapped.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    w = make_window(recipe=str(path))
    assert not messages, messages.texts()
    dialog = w.open_data_dialog()
    assert dialog.settings() == DataSettings("sample:digits", val_fraction=0.3, augment="standard", batch_size=16,
                                             image_size=8)
    assert dialog.spins["workers"].text() == "auto" and dialog.spins["subset"].text() == "all"
    dialog.reject()
    assert w.doc.undo_stack.isClean()


def test_a_run_from_before_val_shows_a_dash(qtbot, tmp_path):
    view = RunsView()
    qtbot.addWidget(view)
    folder = tmp_path / "old-run" / "snapshots" / "00-baseline"
    row = {"index": 0, "stage": "baseline", "accuracy": 0.975, "compression_ratio": 1.0, "path": str(folder)}
    points = []
    view.pointsChanged.connect(points.append)
    view.add_snapshot(str(tmp_path / "old-run"), row)
    item = snapshot_item(view, folder)
    assert item.text(VAL) == F.percent(None) and item.text(TEST) == "97.50%"
    assert points[-1][0]["val_accuracy"] is None


def test_a_recipe_whose_data_mapping_names_other_data_asks(make_window, qtbot, tmp_path, messages):
    w = make_window()
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump({"name": "fake", "data": {"spec": "fake:1x8x8:10:64", "val_fraction": 0.3},
                                    "stages": [{"kind": "evaluate"}]}))
    messages.answer = QMessageBox.StandardButton.Yes
    assert w.open_recipe(str(path))
    title, text, _ = messages[-1]
    assert title == "Which model?" and "fake:1x8x8:10:64" in text
    qtbot.waitUntil(lambda: w.data_spec == "fake:1x8x8:10:64", timeout=WAIT_MS)
    assert w.doc.data_settings(w.data_spec) == DataSettings("fake:1x8x8:10:64", val_fraction=0.3)
