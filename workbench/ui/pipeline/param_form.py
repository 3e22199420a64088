"""A stage's settings form, generated from its `Params` dataclass: no GUI code per stage kind.

Each field gets an editor chosen from its type and metadata (range, choices, layers), its help as
a tooltip, and an inline error line filled from the core validator.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

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


class ParamForm(QWidget):
    """Emits `edited(field, value)`; call `set_values` / `set_errors` to show the document's state."""

    edited = Signal(str, object)

    def __init__(self, kind: str, layer_names: list[str] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        module = stages.get(kind)
        self.editors: dict[str, Editor] = {}
        self.error_labels: dict[str, QLabel] = {}
        self.labels: dict[str, QLabel] = {}
        self.metas: dict[str, dict] = {}
        self.stage_error = QLabel()
        self.stage_error.setObjectName("fieldError")
        self.stage_error.setWordWrap(True)
        self.stage_error.hide()
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        advanced: list[tuple] = []
        for f, tp in P.param_fields(module.Params):
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
        layout.setContentsMargins(0, 0, 0, 0)
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
        label = QLabel(f.name.replace("_", " "))
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

    def set_errors(self, errors: dict[str, str]) -> None:
        for name, label in self.error_labels.items():
            message = errors.get(name, "")
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

    def error_text(self, name: str) -> str:
        label = self.error_labels[name]
        return label.text() if not label.isHidden() else ""
