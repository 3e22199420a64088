"""Two snapshots side by side: their totals and every layer, changed rows highlighted."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from ...core.snapshot_tools import compare_snapshots
from .. import formatting as F
from . import errors
from .common import Buttons, button_box

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
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>A</b> = {result['a']['path']}<br><b>B</b> = {result['b']['path']}"))
        layout.addWidget(self.totals_table)
        layout.addWidget(QLabel("Per layer (changed rows highlighted):"))
        layout.addWidget(self.layers_table, 1)
        layout.addWidget(button_box(self, Buttons.Close))


def open_compare(parent, a: str, b: str) -> CompareDialog | None:
    """Compare two snapshots in a dialog (shown, not modal); an unreadable snapshot is a message instead."""
    try:
        result = compare_snapshots(a, b)
    except Exception as exc:  # noqa: BLE001 - unreadable snapshot.json: a message, not a crash
        errors.show_error(parent, "Cannot compare", str(exc))
        return None
    dialog = CompareDialog(result, parent)
    dialog.show()
    return dialog
