"""Stages are added and configured through forms generated from their Params; bad values are marked inline."""
import yaml

from workbench.core import stages
from workbench.core.recipe import Recipe
from workbench.ui.pipeline.param_form import ParamForm
from workbench.ui.pipeline.value_editors import ChoiceEditor, FloatEditor, IntEditor, MultiChoiceEditor, TextEditor


def palette_action(editor, kind):
    return next(a for a in editor.palette_menu.actions() if a.data() == kind)


def test_every_stage_kind_gets_a_form(qtbot):
    for kind in stages.available():
        form = ParamForm(kind, ["fc1", "fc2"])
        qtbot.addWidget(form)
        assert form.editors, kind
        for name, editor in form.editors.items():
            assert editor.toolTip(), (kind, name)


def test_add_and_configure_stages(make_window, messages):
    w = make_window()
    editor, doc = w.editor, w.doc
    n = len(doc.stages)
    editor.cards.setCurrentRow(n - 1)
    palette_action(editor, "prune").trigger()
    assert [s["kind"] for s in doc.stages][-1] == "prune"
    form = editor.form
    assert form.kind == "prune" and editor.current() == n
    # a spin box with the field's range, a combo box with its choices
    sparsity = form.editors["sparsity"]
    assert isinstance(sparsity, FloatEditor) and sparsity.inner.maximum() <= 1.0
    sparsity.inner.setValue(0.8)
    method = form.editors["method"]
    assert isinstance(method, ChoiceEditor) and method.inner.count() >= 3
    method.inner.setCurrentText("l1")
    steps = form.editors["steps"]
    assert isinstance(steps, IntEditor) and steps.inner.minimum() == 1
    steps.inner.setValue(3)
    # layer pickers know the model's layers
    exclude = form.editors["exclude"]
    assert isinstance(exclude, TextEditor) and exclude.layer_names == ["fc1", "fc2", "fc3"]
    exclude.set_value(["fc3"])
    exclude.changed.emit(["fc3"])
    params = doc.stages[n]["params"]
    assert (params["sparsity"], params["method"], params["steps"], params["exclude"]) == (0.8, "l1", 3, ["fc3"])
    # invalid value: inline error, run refused
    form.editors["lr"].inner.setValue(0.0)
    assert "got 0.0" in editor.form.error_text("lr")
    assert editor.status.property("invalid") is True
    assert not w.start_run()
    assert "lr" in messages.texts()
    # undo brings the valid value back and clears the error
    doc.undo_stack.undo()
    assert doc.stages[n]["params"]["lr"] > 0 and editor.form.error_text("lr") == ""
    # export formats come from the registry, as a checklist
    editor.cards.setCurrentRow(n - 1)
    formats = editor.form.editors["formats"]
    assert isinstance(formats, MultiChoiceEditor)
    recipe = Recipe.from_dict(yaml.safe_load(doc.to_yaml()))
    assert recipe.stages[n].params.sparsity == 0.8


def test_structured_values_typed_as_yaml_are_validated(make_window):
    w = make_window()
    w.editor.cards.setCurrentRow(0)
    w.editor.add("quantize")
    bits = w.editor.form.editors["bits"]
    bits.inner.setText("{linear: 12}")
    bits.inner.textEdited.emit("{linear: 12}")
    assert "linear" in w.editor.form.error_text("bits")
    bits.inner.setText("{linear: 4}")
    bits.inner.textEdited.emit("{linear: 4}")
    assert w.editor.form.error_text("bits") == ""
    assert w.doc.stages[w.editor.current()]["params"]["bits"] == {"linear": 4}


def test_remove_duplicate_reorder_disable_undo(make_window):
    w = make_window()
    editor, doc = w.editor, w.doc
    kinds = lambda: [s["kind"] for s in doc.stages]
    assert kinds() == ["train", "export"]
    editor.cards.setCurrentRow(0)
    editor.duplicate()
    assert kinds() == ["train", "train", "export"]
    editor.cards.setCurrentRow(2)
    editor.shift(-1)
    assert kinds() == ["train", "export", "train"]
    editor.cards.moveRequested.emit(2, 0)   # what a drag and drop asks for
    assert kinds() == ["train", "train", "export"]
    item = editor.cards.item(0)
    item.setCheckState(item.checkState().Unchecked)
    assert doc.stages[0]["enabled"] is False and doc.to_dict()["stages"][0]["enabled"] is False
    editor.cards.setCurrentRow(1)
    editor.remove()
    assert kinds() == ["train", "export"]
    assert doc.undo_stack.count() == 5   # duplicate, shift, move, disable, remove
    for _ in range(5):
        doc.undo_stack.undo()
    assert kinds() == ["train", "export"] and all(s["enabled"] for s in doc.stages)
    doc.undo_stack.redo()
    assert kinds() == ["train", "train", "export"]


def test_save_and_open_recipe(make_window, tmp_path, messages):
    w = make_window()
    w.doc.set_value(0, "epochs", 7)
    path = tmp_path / "saved.yaml"
    w._save_to(str(path))
    assert Recipe.load(path).stages[0].params.epochs == 7
    w.doc.set_value(0, "epochs", 2)
    assert w.open_recipe(str(path))
    assert w.doc.stages[0]["params"]["epochs"] == 7 and w.doc.undo_stack.isClean()


def test_invalid_recipes_show_messages(make_window, tmp_path, messages):
    w = make_window()
    broken = tmp_path / "broken.yaml"
    broken.write_text("stages: [kind: train\n  - oops")
    assert not w.open_recipe(str(broken))
    assert "not valid YAML" in messages.texts()
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("stages:\n  - kind: shrink\n")
    assert not w.open_recipe(str(unknown))
    assert "unknown stage kind" in messages.texts()
    bad_value = tmp_path / "bad_value.yaml"
    bad_value.write_text("stages:\n  - kind: train\n    epochs: -3\n")
    assert w.open_recipe(str(bad_value))         # loaded, the bad value marked inline
    assert "epochs" in messages[-1][1]
    w.editor.cards.setCurrentRow(0)
    assert w.editor.form.error_text("epochs") == "must be in [0, 1000], got -3"   # shown next to the field
    assert any("epochs" in e for e in w.doc.stage_errors(0))
    assert not w.open_recipe(str(tmp_path / "missing.yaml"))


def test_dropping_a_card_moves_the_stage(make_window, qtbot):
    from PySide6.QtCore import QMimeData, QPointF, Qt
    from PySide6.QtGui import QDropEvent
    w = make_window()
    w.editor.add("evaluate")                       # train, evaluate, export
    cards = w.editor.cards
    cards.setCurrentRow(2)
    target = cards.visualItemRect(cards.item(0)).center()
    event = QDropEvent(QPointF(target), Qt.DropAction.MoveAction, QMimeData(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    cards.dropEvent(event)
    assert [s["kind"] for s in w.doc.stages] == ["export", "train", "evaluate"]
    assert cards.count() == 3 and cards.currentRow() == 0
    w.doc.undo_stack.undo()
    assert [s["kind"] for s in w.doc.stages] == ["train", "evaluate", "export"]


def test_per_layer_overrides_picked_from_the_model(make_window, monkeypatch):
    from workbench.ui.dialogs.layer_picker import LayerPicker

    def pick_fc1(dialog):
        names = [dialog.view.item(i).text() for i in range(dialog.view.count())]
        assert names == ["fc1", "fc2", "fc3"]
        dialog.view.item(0).setCheckState(dialog.view.item(0).checkState().Checked)
        return 1
    monkeypatch.setattr(LayerPicker, "exec", pick_fc1)
    w = make_window()
    w.editor.cards.setCurrentRow(0)
    i = w.editor.add("prune")
    overrides = w.editor.form.editors["overrides"]
    overrides.inner.setText("{fc2: 0.5}")
    overrides.inner.textEdited.emit("{fc2: 0.5}")
    overrides.pick.click()
    assert w.doc.stages[i]["params"]["overrides"] == {"fc1": 0.5, "fc2": 0.5}   # fc2 kept its value
    assert w.editor.form.error_text("overrides") == ""


def test_name_seed_and_stage_label(make_window, monkeypatch):
    from PySide6.QtWidgets import QInputDialog
    w = make_window()
    w.editor.seed_box.setValue(7)
    w.editor.name_edit.setText("mine")
    w.editor.name_edit.textEdited.emit("mine")
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("warm-up", True))
    w.editor.rename(0)
    d = w.doc.to_dict()
    assert d["seed"] == 7 and d["name"] == "mine" and d["stages"][0]["label"] == "warm-up"
    assert w.editor.cards.item(0).text().startswith("1. warm-up")
    assert w.doc.recipe().seed == 7


def test_settings_that_do_not_apply_are_greyed_out(make_window):
    w = make_window()
    editor, doc = w.editor, w.doc
    palette_action(editor, "quantize").trigger()
    i = editor.current()
    form = editor.form
    assert doc.stages[i]["kind"] == "quantize"
    assert form.editors["bits"].isEnabled() and "bits" in editor.cards.item(i).text()
    form.editors["method"].inner.setCurrentText("int8_static")
    assert doc.stages[i]["params"]["method"] == "int8_static"
    assert not form.editors["bits"].isEnabled() and not form.labels["bits"].isEnabled()
    assert form.editors["calib_batches"].isEnabled()
    assert "bits" not in editor.cards.item(i).text()          # the card shows what matters
    form.editors["method"].inner.setCurrentText("kmeans")
    assert form.editors["bits"].isEnabled() and not form.editors["calib_batches"].isEnabled()
