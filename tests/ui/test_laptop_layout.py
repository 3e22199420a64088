"""The default layout on a laptop screen (1366x768): the module tree shows at least 12 rows, the stage form at
least 6 fields, no dock is squeezed below its minimum or overlaps another; the wheel over an unfocused combo or spin
box in a stage form scrolls the form instead of changing the setting; long names are fitted, never cut."""
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QPushButton, QVBoxLayout, QWidget

from workbench.ui.dialogs import errors
from workbench.ui.layout import arrange
from workbench.ui.pipeline.value_editors import ChoiceEditor, FloatEditor, IntEditor
from workbench.ui.widgets.layer_bars import ROW_PX, LayerBars


def _settle(qtbot):
    for _ in range(5):
        QApplication.processEvents()
    qtbot.wait(50)


def _visible_rows(tree) -> int:
    """Rows of the tree wholly inside its viewport."""
    model, height, count = tree.model(), tree.viewport().height(), 0
    index = tree.indexAt(QPoint(4, 2))
    while index.isValid():
        rect = tree.visualRect(index)
        if rect.bottom() > height:
            break
        count += rect.top() >= 0
        index = tree.indexBelow(index)
    return count if model.rowCount() else 0


def _visible_fields(editor) -> int:
    viewport, form = editor.scroll_area.viewport(), editor.form
    shown = 0
    for box in form.editors.values():
        top = box.mapTo(viewport, QPoint(0, 0)).y()
        shown += box.isVisible() and top >= 0 and top + box.height() <= viewport.height()
    return shown


def test_the_default_layout_at_1366x768(make_window, qtbot):
    w = make_window(model="torchvision:resnet18")              # far more than 12 modules
    w.resize(1366, 768)
    arrange(w)
    w.editor.cards.setCurrentRow(0)
    w.editor.add("prune")                                      # a stage with many settings (21)
    _settle(qtbot)
    assert w.size().width() == 1366 and w.size().height() == 768
    assert _visible_rows(w.browser.tree) >= 12
    assert len(w.editor.form.editors) > 12 and _visible_fields(w.editor) >= 6
    rects = {k: d.geometry() for k, d in w.docks.items()} | {"plots": w.centralWidget().geometry()}
    for key, dock in w.docks.items():
        assert dock.isVisible() and not dock.isFloating(), key
        hint = dock.minimumSizeHint()
        assert rects[key].width() >= hint.width() and rects[key].height() >= hint.height(), key
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rects[a].intersects(rects[b]), (a, b)


def _wheel(widget, up: bool = True) -> bool:
    """Send one wheel notch; whether the widget took it. (A wheel event the widget ignores goes on to its parents,
    the form's scroll area; Qt does that for real, spontaneous events only, so here the test checks `accepted`.)"""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 if up else -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    event.setAccepted(True)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_the_wheel_over_an_unfocused_combo_or_spin_box_scrolls_the_form(qtbot):
    choice = ChoiceEditor({"choices": ["a", "b", "c"]})
    count = IntEditor({"min": 0, "max": 100})
    rate = FloatEditor({"min": 0.0, "max": 1.0, "step": 0.1}, 0.5)
    choice.set_value("b")
    count.set_value(50)
    rate.set_value(0.5)
    seen = []
    for editor in (choice, count, rate):
        editor.changed.connect(seen.append)
    form = QWidget()
    column = QVBoxLayout(form)
    for editor in (choice, count, rate):
        column.addWidget(editor)
    qtbot.addWidget(form)
    form.show()
    _settle(qtbot)
    for editor in (choice, count, rate):
        assert editor.inner.focusPolicy() == Qt.FocusPolicy.StrongFocus     # the wheel does not focus it either
        editor.inner.clearFocus()                              # the window gives its first field the focus
        assert not _wheel(editor.inner) and not _wheel(editor.inner, up=False)   # left to the scroll area
        assert not editor.inner.hasFocus()
    assert (choice.value(), count.value(), rate.value()) == ("b", 50, 0.5) and seen == []
    choice.inner.setFocus()                                    # clicked or tabbed into: the wheel is its own
    qtbot.waitUntil(choice.inner.hasFocus)
    assert _wheel(choice.inner, up=False)
    assert choice.value() == "c" and seen == ["c"]
    count.inner.setFocus()
    qtbot.waitUntil(count.inner.hasFocus)
    assert _wheel(count.inner) and count.value() == 51


def test_layer_names_never_overlap_however_many_layers():
    bars = LayerBars()
    bars.resize(600, 320)
    bars.show()
    rows = [{"name": f"blocks.{i}.conv", "sparsity": 0.5, "params": 100, "channels": 8, "params_before": None,
             "channels_before": None} for i in range(60)]
    bars.show_rows(rows)
    QApplication.processEvents()
    height = bars.sparsity.plot.getPlotItem().getViewBox().height()
    step = bars.label_step()
    assert height > 0 and step > 1 and height / (len(rows) / step) >= ROW_PX
    ticks = bars.sparsity.plot.getPlotItem().getAxis("left")._tickLevels[0]
    assert [n for _, n in ticks] == [r["name"] for r in rows][::step]
    assert bars.texts and not any(t.isVisible() for t in bars.texts)        # no value text on rows this thin
    bars.show_rows(rows[:8])                                                  # few layers: all named, values shown
    QApplication.processEvents()
    assert bars.label_step() == 1 and all(t.isVisible() for t in bars.texts) and len(bars.texts) == 8
    bars.close()


def test_a_long_button_text_is_elided_in_the_middle_with_the_whole_text_as_tooltip(qtbot):
    long = "Keep /home/someone/projects/mnist-resnet18/checkpoints/mnist_r18.pth on imagefolder:/data/digits-png"
    button = QPushButton()
    qtbot.addWidget(button)
    errors._label(button, long)
    assert button.text() != long and "…" in button.text() and button.toolTip() == long
    assert button.fontMetrics().horizontalAdvance(button.text()) <= errors.BUTTON_TEXT_PX
    assert button.text().startswith("Keep /home") and button.text().endswith("digits-png")
    errors._label(button, "Keep it")
    assert button.text() == "Keep it"
