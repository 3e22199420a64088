"""Dialogs on snapshots: compare two side by side, export one in any format (verified by reading it back)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from ..core.export import formats
from ..core.snapshot_tools import export_spec
from . import formatting as F
from .tasks import run_task

TOTAL_ROWS = (("accuracy", lambda v: F.percent(v, 2)), ("params", F.count), ("nonzero_params", F.count),
              ("flops", F.human), ("compressed_bytes", F.size), ("compression_ratio", F.ratio), ("latency_ms", F.ms))


def _table(headers: list[str], rows: list[list[str]], highlight: list[bool] | None = None) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if c > 0:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if highlight and highlight[r]:
                item.setBackground(QColor("#fef3c7"))
            table.setItem(r, c, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setDefaultSectionSize(24)
    return table


class CompareDialog(QDialog):
    """Shows `workbench.core.snapshot_tools.compare_snapshots` output."""

    def __init__(self, result: dict, parent=None) -> None:
        super().__init__(parent)
        a, b = result["a"]["label"], result["b"]["label"]
        self.setWindowTitle(f"Compare {a} and {b}")
        self.resize(820, 560)
        totals = [[name, fmt(va), fmt(vb)] for name, fmt in TOTAL_ROWS for va, vb in [result["totals"][name]]]
        rows, changed = [], []
        for r in result["layers"]:
            ra, rb = r["a"] or {}, r["b"] or {}
            ds = r["delta_sparsity"]
            rows.append([r["name"], F.shape(ra.get("shape")), F.shape(rb.get("shape")), F.count(ra.get("nonzero_params")),
                         F.count(rb.get("nonzero_params")), f"{r['delta_nonzero']:+,}", F.percent(ra.get("sparsity")),
                         F.percent(rb.get("sparsity")), "–" if ds is None else f"{100 * ds:+.1f} pt"])
            changed.append(r["shape_changed"] or r["delta_nonzero"] != 0)
        self.totals_table = _table(["metric", "A", "B"], totals)
        self.totals_table.setMinimumHeight(24 * (len(totals) + 1) + 6)
        self.layers_table = _table(["layer", "shape A", "shape B", "non-zero A", "non-zero B", "Δ non-zero",
                                    "sparsity A", "sparsity B", "Δ sparsity"], rows, changed)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>A</b> = {result['a']['path']}<br><b>B</b> = {result['b']['path']}"))
        layout.addWidget(self.totals_table)
        layout.addWidget(QLabel("Per layer (changed rows highlighted):"))
        layout.addWidget(self.layers_table, 1)
        layout.addWidget(buttons)


class ExportDialog(QDialog):
    """Pick a format and a file; the export runs on a worker thread and the verification result is shown."""

    def __init__(self, spec: str, data_spec: str | None, out_dir: str, parent=None) -> None:
        super().__init__(parent)
        self.spec, self.data_spec, self.out_dir = spec, data_spec, out_dir
        self.result = None
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
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.status = QLabel("Choose a format.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Source: <b>{spec}</b>"))
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.list.setCurrentRow(0)

    def select_format(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.list.setCurrentRow(i)

    def format_name(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else ""

    def _format_changed(self) -> None:
        name = self.format_name()
        if name:
            stem = Path(self.spec).name if Path(self.spec).exists() else self.spec.replace(":", "_")
            self.path.setText(str(Path(self.out_dir) / f"{stem}{self.formats[name].suffix}"))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if path:
            self.path.setText(path)

    def start(self) -> None:
        name, path = self.format_name(), self.path.text().strip()
        if not name or not path:
            self.status.setText("Choose a format and a file.")
            return
        self.result, self.error = None, None
        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting {name}, then reading it back to verify…")
        run_task(export_spec, self.spec, name, path, self.data_spec, on_done=self._done, on_error=self._failed)

    def _done(self, result) -> None:
        self.result = result
        self.export_button.setEnabled(True)
        if result.verified:
            self.status.setText(f"<span style='color:#15803d'>✓ verified</span> · {result.bytes:,} bytes · "
                                f"max |diff| {result.max_abs_diff:.3g}<br>{result.path}")
        else:
            self.status.setText(f"<span style='color:#b91c1c'>✗ not verified</span> · {result.bytes:,} bytes<br>"
                                f"{result.error}")

    def _failed(self, message: str, _details: str) -> None:
        self.error = message
        self.export_button.setEnabled(True)
        self.status.setText(f"<span style='color:#b91c1c'>Export failed: {message}</span>")
