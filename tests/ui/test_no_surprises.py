"""No silent surprises: the recipe's model, unsaved edits, stages after Export, what the form refuses, numbering."""
import yaml
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS

from workbench.ui.pipeline.pipeline_editor import AFTER_EXPORT, AFTER_EXPORT_ROLE


def recipe_for(path, model, stages=({"kind": "train", "epochs": 1},)):
    path.write_text(yaml.safe_dump({"name": "other", "model": model, "data": "sample:digits", "stages": list(stages)}))
    return str(path)


def test_a_recipe_for_another_model_asks_which_to_use(make_window, qtbot, tmp_path, messages):
    w = make_window()
    path = recipe_for(tmp_path / "resnet.yaml", "sample:digits_resnet")
    messages.answer = QMessageBox.StandardButton.No          # keep the open model
    assert w.open_recipe(path)
    title, text, _ = messages[-1]
    assert title == "Which model?" and "sample:digits_resnet" in text and "sample:digits_mlp" in text
    assert w.model_spec == "sample:digits_mlp" and "Keeping sample:digits_mlp" in w.statusBar().currentMessage()
    messages.answer = QMessageBox.StandardButton.Yes         # open the recipe's model
    assert w.open_recipe(path)
    qtbot.waitUntil(lambda: w.model_spec == "sample:digits_resnet", timeout=WAIT_MS)
    count = len(messages)
    assert w.open_recipe(path) and len(messages) == count    # the same model: nothing to ask


def test_closing_with_unsaved_recipe_edits_asks_to_save(make_window, tmp_path, messages):
    w = make_window()
    w.doc.set_value(0, "epochs", 9)
    messages.answer = QMessageBox.StandardButton.Cancel      # cancel: the window stays open, the edit too
    w.close()
    assert w.isVisible() and messages[-1][0] == "Save the recipe?"
    messages.answer = QMessageBox.StandardButton.Yes         # save: written to the recipe's file, then closed
    w.close()
    assert not w.isVisible()
    assert yaml.safe_load(open(w.doc.path))["stages"][0]["epochs"] == 9
    w2 = make_window()                                        # writes the recipe afresh: epochs 1
    w2.doc.set_value(0, "epochs", 4)
    messages.answer = QMessageBox.StandardButton.No          # don't save: closed, the file as it was
    w2.close()
    assert not w2.isVisible() and yaml.safe_load(open(w2.doc.path))["stages"][0]["epochs"] == 1


def test_a_stage_after_export_is_flagged_on_its_card(make_window):
    w = make_window()                                         # train, export
    w.editor.cards.setCurrentRow(1)
    w.editor.add("quantize")                                  # after the export
    card = w.editor.cards.item(2)
    assert card.data(AFTER_EXPORT_ROLE) and AFTER_EXPORT in card.text() and "after the Export" in card.toolTip()
    assert not w.editor.cards.item(0).data(AFTER_EXPORT_ROLE)
    w.editor.shift(-1)                                        # moved above the export: fine
    assert not any(w.editor.cards.item(i).data(AFTER_EXPORT_ROLE) for i in range(3))


def test_the_form_refuses_what_the_run_would(make_window, qtbot, messages):
    w = make_window()
    w.editor.cards.setCurrentRow(0)
    i = w.editor.add("prune")
    form = w.editor.form
    assert "sparsity" in w.editor.cards.item(i).text()        # the prune card shows its sparsity
    # a layer name the model does not have, caught inline (and Run refuses)
    exclude = form.editors["exclude"]
    exclude.inner.setText("[fc9]")
    exclude.inner.textEdited.emit("[fc9]")
    assert "fc9" in form.error_text("exclude") and "no such layer" in form.error_text("exclude")
    assert not w.start_run() and "stage 2" in messages[-1][1] + messages[-1][2]
    exclude.inner.setText("[fc1]")
    exclude.inner.textEdited.emit("[fc1]")
    assert form.error_text("exclude") == ""
    # a negative number typed into a count is refused, not taken as positive
    steps = form.editors["finetune_epochs"]
    assert steps.isEnabled()
    before = w.doc.stages[i]["params"]["finetune_epochs"]
    steps.inner.setFocus()
    steps.inner.lineEdit().selectAll()
    QTest.keyClicks(steps.inner, "-3")
    QTest.keyClick(steps.inner, Qt.Key.Key_Return)
    assert w.doc.stages[i]["params"]["finetune_epochs"] == before and steps.value() == before
    assert "-3 refused" in form.error_text("finetune_epochs")
    # clicking a checkbox's label toggles it
    label, box = form.labels["structured"], form.editors["structured"].inner
    was = box.isChecked()
    QTest.mouseClick(label, Qt.MouseButton.LeftButton, pos=QPoint(3, 3))
    assert box.isChecked() != was and w.doc.stages[i]["params"]["structured"] != was


def test_a_field_with_an_error_is_scrolled_into_view(make_window, qtbot):
    w = make_window()
    w.resize(1366, 768)
    w.editor.cards.setCurrentRow(0)
    i = w.editor.add("prune")
    form = w.editor.form
    w.editor.scroll_area.verticalScrollBar().setValue(0)
    w.doc.set_value(i, "weight_decay", -1.0)                  # a field far down the form
    box = form.field_box("weight_decay")
    qtbot.waitUntil(lambda: not box.visibleRegion().isEmpty(), timeout=WAIT_MS)
    assert form.error_text("weight_decay")


def test_stage_numbers_are_one_based_in_messages_and_shortcuts_are_listed(make_window, messages):
    w = make_window()
    w.doc.set_value(0, "epochs", -3)
    assert not w.start_run()
    title, text, details = messages[-1]
    assert "stages[0]" not in text and "stage 1" in text
    w.show_shortcuts()
    listing = messages[-1][1]
    for key in ("Ctrl+O", "Ctrl+Shift+O", "Ctrl+Shift+R", "Ctrl+S", "Ctrl+Shift+S", "F5", "Shift+F5", "Ctrl+E",
                "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+D", "Del", "Ctrl+Up", "Ctrl+Down", "Ctrl+Q", "F1"):
        assert f"{key}:" in listing or f"{key}," in listing, key
