"""Opening models: the dialog's searchable lists, and files dropped on the window."""
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from waits import WAIT_MS

from workbench.ui.dialogs.open_data import OpenDataDialog
from workbench.ui.dialogs.open_model import OpenModelDialog


def test_open_dialog_lists_and_search(qtbot):
    dialog = OpenModelDialog(recent=["sample:digits_cnn"])
    qtbot.addWidget(dialog)
    samples, tv, timm, archs, recent = dialog.lists
    assert any(samples.item(i).text() == "sample:digits_mlp" for i in range(samples.count()))
    dialog.tabs.setCurrentIndex(1)
    dialog.tabs.currentWidget().search.setText("vgg1")
    visible = [tv.item(i).text() for i in range(tv.count()) if not tv.item(i).isHidden()]
    assert "torchvision:vgg16" in visible and all("vgg1" in v for v in visible)
    tv.setCurrentItem(next(tv.item(i) for i in range(tv.count()) if tv.item(i).text() == "torchvision:vgg16"))
    assert dialog.spec() == "torchvision:vgg16"
    dialog.tabs.currentWidget().search.setText("resnet50")
    tv.setCurrentItem(next(tv.item(i) for i in range(tv.count()) if tv.item(i).text() == "torchvision:resnet50"))
    dialog.weights_combo.setCurrentText("IMAGENET1K_V2")                  # torchvision's weights for that model
    assert dialog.spec() == "torchvision:resnet50:weights=IMAGENET1K_V2"
    dialog.weights_combo.setCurrentIndex(0)
    assert dialog.spec() == "torchvision:resnet50"
    qtbot.waitUntil(lambda: timm.count() > 1000, timeout=WAIT_MS)          # timm's list loads off the GUI thread
    dialog.tabs.setCurrentIndex(2)
    timm.setCurrentItem(next(timm.item(i) for i in range(timm.count()) if timm.item(i).text() == "timm:convnext_atto"))
    assert dialog.spec() == "timm:convnext_atto"
    dialog.pretrained_box.setChecked(True)
    assert dialog.spec() == "timm:convnext_atto:pretrained"
    dialog.tabs.setCurrentIndex(5)
    dialog.path_edit.setText("/tmp/some/snapshot")
    assert dialog.spec() == "/tmp/some/snapshot"
    dialog.spec_edit.setText("arch:lenet5")
    assert dialog.spec() == "arch:lenet5"
    data = OpenDataDialog(current="sample:digits")
    qtbot.addWidget(data)
    assert data.spec() == "sample:digits"


def drop(window, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_dropping_a_snapshot_folder_and_a_recipe(make_window, qtbot, tmp_path, messages):
    from .helpers import wait_run, write_recipe
    w = make_window()
    w.start_run()
    wait_run(qtbot, w)
    snapshot = sorted(w.runs.snapshots)[-1]
    drop(w, snapshot)
    qtbot.waitUntil(lambda: w.model_spec == snapshot, timeout=WAIT_MS)
    assert w.browser.info["total"]["params"] == 50610
    recipe = write_recipe(tmp_path / "dropped.yaml", [{"kind": "evaluate"}])
    drop(w, recipe)
    assert [s["kind"] for s in w.doc.stages] == ["evaluate"]
    (tmp_path / "notes.txt").write_text("hello")
    drop(w, tmp_path / "notes.txt")
    assert "not a model file" in messages.texts()


def test_switching_data_checks_it_first(make_window, qtbot, messages):
    w = make_window()
    w.set_data("sample:nope")
    qtbot.waitUntil(lambda: bool(messages), timeout=WAIT_MS)
    assert "Cannot open data" in messages.texts() and w.data_spec == "sample:digits"
    w.set_data("fake:1x8x8:10:64")
    qtbot.waitUntil(lambda: w.data_spec == "fake:1x8x8:10:64", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.browser.info is not None and w.browser.info.get("data") == "fake:1x8x8:10:64",
                    timeout=WAIT_MS)
