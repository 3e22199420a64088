"""Exporting a snapshot (or the current model) in any format, verified by reading the file back."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from ...core.data import DataSettings
from ...core.errors import ErrorInfo
from ...core.events import ExportResult
from ...core.export import formats
from ...core.snapshot_tools import export_spec, export_stem
from ..qthreading.tasks import run_task
from . import errors
from .common import Buttons, button_box, with_button


class ExportDialog(QDialog):
    """Pick a format and a file; the export runs on a worker thread and the verification result is shown."""

    def __init__(self, spec: str, data_spec: str | DataSettings | None, out_dir: str, parent=None, options: dict | None = None) -> None:
        super().__init__(parent)
        self.spec, self.data_spec, self.out_dir = spec, data_spec, out_dir
        self.options = dict(options or {})      # arch / trust / replace_head the model was opened with
        self.stem: Path | None = None           # the proposed file without its suffix (found off the GUI thread)
        self.exported: ExportResult | None = None     # not `result`: that is QDialog.result(), the dialog's answer
        self.error: str | None = None
        self.setWindowTitle("Export snapshot")
        self.resize(560, 420)
        self.formats = formats()
        self.list = QListWidget()
        for name, fmt in sorted(self.formats.items()):
            item = QListWidgetItem(f"{name}  ({fmt.suffix}) · {fmt.description}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.list.addItem(item)
        self.list.currentItemChanged.connect(lambda *_: self._format_changed())
        self.path = QLineEdit()
        self.path.setPlaceholderText("finding the run's folder…")
        self.status = QLabel("Choose a format.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = button_box(self, Buttons.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Source: <b>{spec}</b>"))
        layout.addWidget(self.list, 1)
        layout.addLayout(with_button(self.path, "Browse…", self._browse))
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.list.setCurrentRow(0)
        self._stem_task = run_task(export_stem, spec, out_dir, on_done=self._stem_found, on_error=lambda _e: None)

    def select_format(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.list.setCurrentRow(i)

    def format_name(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else ""

    def _stem_found(self, stem: Path) -> None:
        """The default file: a run's snapshot in that run's `exports/` (`<model>-<snapshot>`), else in the runs
        folder's `exports/` (never inside the installed workbench); kept if the user has typed a path already."""
        self.stem = stem
        if not self.path.text().strip():
            self._format_changed()

    def _format_changed(self) -> None:
        name = self.format_name()
        if name and self.stem is not None:
            self.path.setText(str(self.stem.with_name(self.stem.name + self.formats[name].suffix)))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if path:
            self.path.setText(path)

    def start(self) -> None:
        name, path = self.format_name(), self.path.text().strip()
        if not name or not path:
            self.status.setText("Choose a format and a file.")
            return
        self.exported, self.error = None, None
        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting {name}, then reading it back to verify…")
        run_task(export_spec, self.spec, name, path, self.data_spec, self.options.get("arch"), bool(self.options.get("trust")),
                 False, bool(self.options.get("replace_head")), on_done=self._done, on_error=self._failed)

    def _done(self, result: ExportResult) -> None:
        self.exported = result
        self.export_button.setEnabled(True)
        if result.verified:
            self.status.setText(f"<span style='color:#15803d'>✓ verified</span> · {result.bytes:,} bytes · "
                                f"max |diff| {result.max_abs_diff:.3g}<br>{result.path}")
        else:
            self.status.setText(f"<span style='color:#b91c1c'>✗ not verified</span> · {result.bytes:,} bytes<br>"
                                f"{result.error}")

    def _failed(self, error: ErrorInfo) -> None:
        message = self.error = error.message
        self.export_button.setEnabled(True)
        self.status.setText(f"<span style='color:#b91c1c'>Export failed: {message}</span>")


def open_export(parent, spec: str | None, data_spec: str | DataSettings | None, out_dir: str, options: dict | None = None) -> ExportDialog | None:
    """The export dialog for a snapshot or model spec (shown, not modal); without one, a message instead."""
    if not spec:
        errors.show_error(parent, "Nothing to export", "Open a model or select a snapshot first.")
        return None
    dialog = ExportDialog(spec, data_spec, out_dir, parent, options)
    dialog.show()
    return dialog
