"""Two snapshots side by side: their totals and every layer, changed rows highlighted."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from ...core.snapshot_tools import compare_snapshots
from .. import formatting as F
from ..table_fit import ColumnFitter
from . import errors
from .common import Buttons, button_box

TOTAL_ROWS = (("val_accuracy", lambda v: F.percent(v, 2)), ("accuracy", lambda v: F.percent(v, 2)), ("params", F.count),
              ("nonzero_params", F.count), ("sparsity", F.percent), ("flops", F.human), ("compressed_bytes", F.size), ("compression_ratio", F.ratio),
              ("latency_ms", F.ms))
TOTAL_NAMES = {"val_accuracy": "val accuracy", "accuracy": "test accuracy", "params": "parameters",
               "nonzero_params": "non-zero parameters", "sparsity": "sparsity (prunable weights)", "flops": "FLOPs",
               "compressed_bytes": "compressed size", "compression_ratio": "compression ratio", "latency_ms": "latency (batch 1, CPU)"}
LAYER_HEADERS = ["layer", "shape A", "shape B", "params A", "params B", "Δ params", "non-zero weights A",
                 "non-zero weights B", "Δ non-zero weights", "sparsity A", "sparsity B", "Δ sparsity"]
LAYER_TIPS = {"non-zero weights A": "Non-zero prunable weights (Linear and convolution weights); – for other layers",
              "sparsity A": "Zeros among the prunable weights; – for layers without any (batch norm, ...)"}


def _signed(n: int | None) -> str:
    return "–" if n is None else f"{n:+,}"


def layer_row(r: dict) -> list[str]:
    ra, rb = r["a"] or {}, r["b"] or {}
    ds = r["delta_sparsity"]
    return [r["name"], F.shape(ra.get("shape")) or "–", F.shape(rb.get("shape")) or "–", F.count(ra.get("params")),
            F.count(rb.get("params")), _signed(r.get("delta_params")), F.count(r.get("nonzero_weights_a")),
            F.count(r.get("nonzero_weights_b")), _signed(r.get("delta_nonzero_weights")), F.percent(ra.get("sparsity")),
            F.percent(rb.get("sparsity")), "–" if ds is None else f"{100 * ds:+.1f} pt"]


class _FittedTable(QTableWidget):
    """A table whose columns fit their content; `fitter` keeps its ColumnFitter alive with it."""

    fitter: ColumnFitter


def _table(headers: list[str], rows: list[list[str]], highlight: list[bool] | None = None) -> QTableWidget:
    table = _FittedTable(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for c, name in enumerate(headers):
        header_item = table.horizontalHeaderItem(c)      # set by setHorizontalHeaderLabels
        if header_item is not None:
            header_item.setToolTip(LAYER_TIPS.get(name.replace(" B", " A"), name))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(f"{headers[c]}: {text}" if c else text)
            if c > 0:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if highlight and highlight[r]:
                item.setBackground(QColor("#fef3c7"))
            table.setItem(r, c, item)
    table.verticalHeader().setDefaultSectionSize(24)
    table.fitter = ColumnFitter(table)
    table.fitter.fit()
    return table


class CompareDialog(QDialog):
    """Shows `workbench.core.snapshot_tools.compare_snapshots` output."""

    def __init__(self, result: dict, parent=None) -> None:
        super().__init__(parent)
        a, b = result["a"]["label"], result["b"]["label"]
        self.setWindowTitle(f"Compare {a} and {b}")
        totals = [[TOTAL_NAMES[name], fmt(va), fmt(vb)] for name, fmt in TOTAL_ROWS
                  for va, vb in [result["totals"].get(name, (None, None))]]
        rows = [layer_row(r) for r in result["layers"]]
        changed = [r["shape_changed"] or bool(r.get("delta_params")) or bool(r.get("delta_nonzero_weights"))
                   for r in result["layers"]]
        self.totals_table = _table(["metric", "A", "B"], totals)
        self.totals_table.setMinimumHeight(24 * (len(totals) + 1) + 6)
        self.layers_table = _table(LAYER_HEADERS, rows, changed)
        screen = self.screen().availableGeometry() if self.screen() else None
        wide = sum(self.layers_table.sizeHintForColumn(c) + 16 for c in range(len(LAYER_HEADERS))) + 40
        self.resize(min(wide, int(screen.width() * 0.9)) if screen else wide, 600)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>A</b> = {result['a']['path']}<br><b>B</b> = {result['b']['path']}"))
        layout.addWidget(self.totals_table)
        layout.addWidget(QLabel("Per layer (changed rows highlighted; weights and sparsity count the prunable weights "
                                "of Linear and convolution layers, – for other layers):"))
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
