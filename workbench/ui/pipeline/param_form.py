"""A stage's settings form, generated from its `Params` dataclass: no GUI code per stage kind.

Each field gets an editor chosen from its type and metadata (range, choices, layers), its help as
a tooltip, and an inline error line filled from the core validator.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from ...core import params as P
from ...core import stages
from .value_editors import Editor, make_editor


def _range_text(meta: dict) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return ""
    lb = "(" if meta.get("min_exclusive") else "["
    rb = ")" if meta.get("max_exclusive") else "]"
    return f" Range {lb}{'−∞' if lo is None else lo}, {'∞' if hi is None else hi}{rb}."


class FieldLabel(QLabel):
    """A field's name; clicking it toggles a checkbox field and puts the cursor into any other field."""

    def __init__(self, text: str, editor: Editor) -> None:
        super().__init__(text)
        self.editor = editor

    def mousePressEvent(self, event) -> None:
        inner = self.editor.inner
        if not inner.isEnabled():
            return
        if isinstance(inner, QCheckBox):
            inner.toggle()
        else:
            inner.setFocus()
        event.accept()


class ParamForm(QWidget):
    """Emits `edited(field, value)`; call `set_values` / `set_errors` to show the document's state."""

    edited = Signal(str, object)

    def __init__(self, kind: str, layer_names: list[str] | None = None, parent=None, description: str = "") -> None:
        super().__init__(parent)
        self.kind = kind
        stage = stages.get(kind)
        self.editors: dict[str, Editor] = {}
        self.error_labels: dict[str, QLabel] = {}
        self.boxes: dict[str, QWidget] = {}          # each field's editor and error line
        self.labels: dict[str, QLabel] = {}
        self.metas: dict[str, dict] = {}
        self.refused: dict[str, str] = {}          # what an editor would not take (a negative count), by field
        self.errors: dict[str, str] = {}
        self.stage_error = QLabel()
        self.stage_error.setObjectName("fieldError")
        self.stage_error.setWordWrap(True)
        self.stage_error.hide()
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        advanced: list[tuple] = []
        for f, tp in P.param_fields(stage.params):
            if f.metadata.get("advanced"):
                advanced.append((f, tp))
            else:
                self._add_row(form, f, tp)
        if advanced:
            heading = QLabel("Advanced")
            heading.setObjectName("formHeading")
            form.addRow(heading)
            for f, tp in advanced:
                self._add_row(form, f, tp)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        if description:              # scrolls with the form, so the settings get the room on a small screen
            about = QLabel(description)
            about.setObjectName("stageDescription")
            about.setWordWrap(True)
            about.setStyleSheet("color: #4b5563; padding-bottom: 4px;")
            layout.addWidget(about)
        layout.addWidget(self.stage_error)
        layout.addLayout(form)
        layout.addStretch()
        if layer_names:
            self.set_layer_names(layer_names)

    def _add_row(self, form: QFormLayout, f, tp) -> None:
        meta = dict(f.metadata)
        editor = make_editor(tp, meta, P.default_of(f))
        tip = f"<b>{f.name}</b> ({P.type_name(tp)}): {meta.get('help') or ''}{_range_text(meta)}"
        if meta.get("choices"):
            tip += f"<br>Choices: {', '.join(map(str, meta['choices']))}."
        tip += f"<br>Default: {P.default_of(f)!r}."
        editor.setToolTip(tip)
        editor.setObjectName(f"field_{f.name}")
        editor.changed.connect(lambda value, name=f.name: self.edited.emit(name, value))
        editor.refused.connect(lambda message, name=f.name: self._refused(name, message))
        label = FieldLabel(f.name.replace("_", " "), editor)
        label.setToolTip(tip)
        error = QLabel()
        error.setObjectName("fieldError")
        error.setWordWrap(True)
        error.hide()
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(1)
        col.addWidget(editor)
        col.addWidget(error)
        form.addRow(label, box)
        self.editors[f.name] = editor
        self.error_labels[f.name] = error
        self.boxes[f.name] = box
        self.labels[f.name] = label
        self.metas[f.name] = meta

    def set_values(self, values: dict[str, Any]) -> None:
        for name, editor in self.editors.items():
            if name in values and editor.value() != values[name]:
                editor.set_value(values[name])
        current = {name: editor.value() for name, editor in self.editors.items()}
        for name, editor in self.editors.items():
            relevant = P.applies(self.metas[name], current)   # e.g. k-means bits only for method kmeans
            editor.setEnabled(relevant)
            self.labels[name].setEnabled(relevant)

    def _refused(self, name: str, message: str) -> None:
        if self.refused.get(name, "") != message:
            self.refused[name] = message
            self.set_errors(self.errors)

    def set_errors(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        for name, label in self.error_labels.items():
            message = self.refused.get(name) or errors.get(name, "")
            label.setText(message)
            label.setVisible(bool(message))
            editor = self.editors[name]
            editor.inner.setProperty("invalid", bool(message))
            editor.inner.style().unpolish(editor.inner)
            editor.inner.style().polish(editor.inner)
        self.stage_error.setText(errors.get("", ""))
        self.stage_error.setVisible(bool(errors.get("")))

    def set_layer_names(self, names: list[str]) -> None:
        for editor in self.editors.values():
            editor.set_layer_names(names)

    def first_error(self) -> str | None:
        """The first field (in the form's order) showing an error; None when there is none."""
        return next((name for name, label in self.error_labels.items() if not label.isHidden()), None)

    def field_box(self, name: str) -> QWidget:
        """The field's editor and error line together (what to scroll into view)."""
        return self.boxes[name]

    def error_text(self, name: str) -> str:
        label = self.error_labels[name]
        return label.text() if not label.isHidden() else ""
