"""Two snapshots side by side: their totals and every layer, changed rows highlighted."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QDialog, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from ...core import runtimes
from ...core.snapshot_tools import compare_snapshots
from .. import formatting as F
from ..table_fit import ColumnFitter
from . import errors
from .common import Buttons, button_box

TOTAL_ROWS = (("val_accuracy", lambda v: F.percent(v, 2)), ("accuracy", lambda v: F.percent(v, 2)), ("params", F.count),
              ("nonzero_params", F.count), ("sparsity", F.percent), ("flops", F.human), ("compressed_bytes", F.size), ("compression_ratio", F.ratio))
TOTAL_NAMES = {"val_accuracy": "val accuracy", "accuracy": "test accuracy", "params": "parameters",
               "nonzero_params": "non-zero parameters", "sparsity": "sparsity (prunable weights)", "flops": "FLOPs",
               "compressed_bytes": "compressed size", "compression_ratio": "compression ratio"}
LAYER_HEADERS = ["layer", "shape A", "shape B", "params A", "params B", "Δ params", "non-zero weights A",
                 "non-zero weights B", "Δ non-zero weights", "sparsity A", "sparsity B", "Δ sparsity"]
LAYER_TIPS = {"non-zero weights A": "Non-zero prunable weights (Linear and convolution weights); – for other layers",
              "sparsity A": "Zeros among the prunable weights; – for layers without any (batch norm, ...)"}


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def latency_rows(totals: dict) -> list[tuple[list[str], list[str]]]:
    """(row, tooltips) of the latency totals: eager and every deploy runtime either snapshot was timed on, as
    "median ms (p10–p90)" ("noisy" or "—" with why in the tooltip), then the stage's own ratio against its input
    (measured alternately) and int8 agreement where a snapshot has them. No ratio of A's figure to B's: they were
    timed at different times."""
    figures = [_mapping(f) for f in totals.get("latency", (None, None))]
    whys = [_mapping(w) for w in totals.get("latency_why", (None, None))]
    medians = totals.get("latency_ms", (None, None))
    names = ["eager", *(n for n in runtimes.names()[1:] if any(n in f for f in figures))]   # known names only
    out = []
    for name in names:
        cells = [(F.latency(f[name]), F.latency_tip(name, f[name], w.get(name))) if name in f else
                 (F.ms(m), f"eager: median {F.ms(m)} (no spread recorded)") if name == "eager" and _number(m) else
                 ("—", F.latency_tip(name, None, w.get(name))) for f, w, m in zip(figures, whys, medians)]
        out.append(([f"latency on {name} (batch 1)", *(t for t, _ in cells)], [f"latency on {name}", *(t for _, t in cells)]))
    ratios = [_ratio(_mapping(r)) for r in totals.get("latency_ratio", (None, None))]
    if any(text for text, _ in ratios):
        out.append((["latency / its stage input's (A/B/A/B)", *(t for t, _ in ratios)],
                    ["The stage's own latency ratio against its input, timed alternately in one process",
                     *(tip for _, tip in ratios)]))
    agreement = totals.get("agreement", (None, None))
    if any(_number(a) for a in agreement):
        texts = [F.percent(a, 1) if _number(a) else "" for a in agreement]
        out.append((["int8 agreement with its float input (val)", *texts], ["Top-1 agreement on val", *texts]))
    return out


def _ratio(r: dict) -> tuple[str, str]:
    """A stage's own latency ratio claim ({"runtime", "value", "p10", "p90", "repeats"[, "noisy"]}): text, tooltip."""
    if not all(_number(r.get(k)) for k in ("value", "p10", "p90")):
        return "", ""
    tip = (f"on {r.get('runtime', 'eager')}: median {r['value']:.3g}, p10 {r['p10']:.3g}, p90 {r['p90']:.3g} over "
           f"{r.get('repeats', '?')} alternating pairs" + ("; noisy: too wide a spread to mean anything" if r.get("noisy") else ""))
    return ("noisy" if r.get("noisy") else f"{r['value']:.2f}× ({r['p10']:.2f}–{r['p90']:.2f})"), tip


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
        timing = latency_rows(result["totals"])
        totals += [row for row, _ in timing]
        rows = [layer_row(r) for r in result["layers"]]
        changed = [r["shape_changed"] or bool(r.get("delta_params")) or bool(r.get("delta_nonzero_weights"))
                   for r in result["layers"]]
        self.totals_table = _table(["metric", "A", "B"], totals)
        self.totals_table.setMinimumHeight(24 * (len(totals) + 1) + 6)
        for r, (row, tips) in enumerate(timing, start=len(totals) - len(timing)):
            for c, tip in enumerate(tips):
                item = self.totals_table.item(r, c)
                if item is not None:
                    item.setToolTip(tip)
                    if row[c] in ("noisy", "—"):
                        item.setForeground(self.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
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
