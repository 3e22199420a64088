"""One editor widget per kind of stage setting, chosen from the field's type and metadata.

Every editor has `value()`, `set_value(v)` (without emitting) and the signal `changed(object)`.
"""
from __future__ import annotations

import math
import types
import typing
from typing import Any

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QToolButton,
    QWidget,
)

from ..dialogs.layer_picker import LayerPicker

BIG = 1e9


class Editor(QWidget):
    changed = Signal(object)
    refused = Signal(str)     # typed text the editor will not take ("" once it takes a value again)

    def __init__(self, inner: QWidget, parent=None) -> None:
        super().__init__(parent)
        self.inner = inner
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.addWidget(inner, 1)

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        self.inner.blockSignals(True)
        try:
            self._show(value)
        finally:
            self.inner.blockSignals(False)

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def set_layer_names(self, names: list[str]) -> None:
        pass

    def _emit(self, *_args) -> None:
        self.changed.emit(self.value())


class BoolEditor(Editor):
    inner: QCheckBox

    def __init__(self, meta: dict) -> None:
        super().__init__(QCheckBox())
        self.inner.toggled.connect(self._emit)

    def value(self) -> bool:
        return self.inner.isChecked()

    def _show(self, value) -> None:
        self.inner.setChecked(bool(value))


def _bounds(meta: dict, integer: bool) -> tuple[float, float]:
    lo, hi = meta.get("min"), meta.get("max")
    lo = -BIG if lo is None else lo + (1 if integer and meta.get("min_exclusive") else 0)
    hi = BIG if hi is None else hi - (1 if integer and meta.get("max_exclusive") else 0)
    return lo, hi


def _wheel_if_focused(box: QWidget, event: QWheelEvent, wheel) -> None:
    """The mouse wheel changes a combo or spin box only once it has the focus (clicked or tabbed into): over an
    unfocused one it scrolls the form, as it does everywhere else, instead of changing a setting in passing."""
    if box.hasFocus():
        wheel(box, event)
    else:
        event.ignore()             # goes on to the scroll area under it


class ComboBox(QComboBox):
    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)      # the wheel alone does not give it the focus

    def wheelEvent(self, event: QWheelEvent) -> None:
        _wheel_if_focused(self, event, QComboBox.wheelEvent)


class FloatSpinBox(QDoubleSpinBox):
    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        _wheel_if_focused(self, event, QDoubleSpinBox.wheelEvent)


class IntSpinBox(QSpinBox):
    """A spin box that refuses a negative number typed where none is allowed (a plain QSpinBox drops the minus sign
    and takes the number as positive): the text stays as typed, marked, and the previous value is kept."""

    refusedText = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        _wheel_if_focused(self, event, QSpinBox.wheelEvent)

    def validate(self, text: str, pos: int):
        stripped = text.strip().removeprefix(self.prefix()).strip()
        if stripped.startswith("-") and self.minimum() >= 0:
            self.refusedText.emit(f"{stripped} refused: must be at least {self.minimum()}")
            return QValidator.State.Intermediate, text, pos
        return super().validate(text, pos)


class IntEditor(Editor):
    inner: IntSpinBox

    def __init__(self, meta: dict) -> None:
        box = IntSpinBox()
        lo, hi = _bounds(meta, True)
        box.setRange(int(max(lo, -2**31 + 1)), int(min(hi, 2**31 - 1)))
        if meta.get("step"):
            box.setSingleStep(int(meta["step"]))
        box.setAccelerated(True)
        super().__init__(box)
        box.valueChanged.connect(self._emit)
        box.refusedText.connect(self.refused)
        box.lineEdit().textEdited.connect(self._typed)

    def _typed(self, text: str) -> None:
        if "-" not in text:                 # typed again without a minus sign: taken
            self.refused.emit("")

    def value(self) -> int:
        return self.inner.value()

    def _show(self, value) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            self.inner.setValue(value)


class FloatEditor(Editor):
    inner: FloatSpinBox

    def __init__(self, meta: dict, default: Any) -> None:
        box = FloatSpinBox()
        step = meta.get("step") or 0.0
        small = min([abs(v) for v in (step, default) if isinstance(v, (int, float)) and v] or [0.01])
        box.setDecimals(min(10, max(3, int(-math.floor(math.log10(small))) + 2)))
        lo, hi = _bounds(meta, False)
        box.setRange(lo, hi)
        box.setSingleStep(step or (0.05 if hi <= 1 else 0.1))
        box.setStepType(QAbstractSpinBox.StepType.DefaultStepType)
        super().__init__(box)
        box.valueChanged.connect(self._emit)

    def value(self) -> float:
        return float(self.inner.value())

    def _show(self, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.inner.setValue(float(value))


class ChoiceEditor(Editor):
    inner: ComboBox

    def __init__(self, meta: dict) -> None:
        box = ComboBox()
        box.addItems([str(c) for c in meta["choices"]])
        super().__init__(box)
        box.currentTextChanged.connect(self._emit)

    def value(self) -> str:
        return self.inner.currentText()

    def _show(self, value) -> None:
        self.inner.setCurrentText(str(value))


class MultiChoiceEditor(Editor):
    """A list whose items come from fixed choices: a short checklist."""

    inner: QListWidget

    def __init__(self, meta: dict) -> None:
        view = QListWidget()
        for c in meta["choices"]:
            item = QListWidgetItem(str(c))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            view.addItem(item)
        view.setMaximumHeight(min(140, 22 * len(meta["choices"]) + 6))
        super().__init__(view)
        view.itemChanged.connect(self._emit)

    def value(self) -> list[str]:
        return [self.inner.item(i).text() for i in range(self.inner.count())
                if self.inner.item(i).checkState() == Qt.CheckState.Checked]

    def _show(self, value) -> None:
        chosen = set(value) if isinstance(value, list) else set()
        for i in range(self.inner.count()):
            item = self.inner.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in chosen else Qt.CheckState.Unchecked)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


class TextEditor(Editor):
    """Plain text, or any structured value written as YAML (`{conv: 8, linear: 5}`, `[0.5, 0.9]`, `null`).

    Text that does not parse is passed on as it is, so the validator marks it inline.
    """

    inner: QLineEdit

    def __init__(self, meta: dict, plain: bool, layers: bool = False) -> None:
        edit = QLineEdit()
        super().__init__(edit)
        self.plain, self.meta = plain, meta
        self.layer_names: list[str] = []
        edit.textEdited.connect(self._emit)
        edit.setPlaceholderText("text" if plain else "YAML, e.g. [a, b] or {key: value}")
        if layers:
            self.pick = QToolButton()
            self.pick.setText("…")
            self.pick.setToolTip("Pick layers of the open model")
            self.pick.clicked.connect(self._pick_layers)
            self.row.addWidget(self.pick)

    def value(self) -> Any:
        text = self.inner.text()
        if self.plain:
            return text
        try:
            return yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            return text

    def _show(self, value) -> None:
        self.inner.setText(_to_text(value) if value is not None or self.plain else "null")

    def set_layer_names(self, names: list[str]) -> None:
        self.layer_names = list(names)
        if self.plain:
            self.inner.setCompleter(QCompleter(self.layer_names, self.inner))

    def _pick_layers(self) -> None:
        current = self.value()
        dialog = LayerPicker(self, self.layer_names, current)
        if dialog.exec():
            picked = dialog.picked()
            if isinstance(current, dict):
                default = next(iter(current.values()), self.meta.get("min") or 0.5)
                value: Any = {name: current.get(name, default) for name in picked}
            else:
                value = picked
            self.set_value(value)
            self.changed.emit(value)


def _plain(tp: Any) -> Any:
    """X for `X | None`; tp otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def make_editor(tp: Any, meta: dict, default: Any) -> Editor:
    """The editor for a field of type `tp` with metadata `meta` (from `workbench.core.params.param`)."""
    optional = _plain(tp) is not tp
    tp = _plain(tp)
    choices = meta.get("choices")
    origin = typing.get_origin(tp)
    if not optional:
        if tp is bool:
            return BoolEditor(meta)
        if tp is int:
            return IntEditor(meta)
        if tp is float:
            return FloatEditor(meta, default)
        if tp is str and choices:
            return ChoiceEditor(meta)
        if origin is list and choices:
            return MultiChoiceEditor(meta)
    layers = bool(meta.get("layers"))
    return TextEditor(meta, plain=tp is str and not optional, layers=layers and (origin in (list, dict) or tp is not str))
