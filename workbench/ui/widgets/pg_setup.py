"""pyqtgraph, imported after PySide6 and configured once for every plot in the application."""
from __future__ import annotations

import pyqtgraph as pg
import PySide6.QtCore  # noqa: F401 - PySide6 must be imported before pyqtgraph

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="#374151")

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4f46e5",
           "#b45309"]


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def plot_widget(title: str, x_label: str = "", y_label: str = "") -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setTitle(title, size="10pt")
    item = w.getPlotItem()
    if x_label:
        item.setLabel("bottom", x_label)
    if y_label:
        item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.15)
    for side in ("left", "bottom"):
        item.getAxis(side).enableAutoSIPrefix(False)
    w.setMinimumHeight(140)
    return w


def export_png(widget: pg.PlotWidget, path: str) -> None:
    from pyqtgraph.exporters import ImageExporter
    exporter = ImageExporter(widget.getPlotItem())
    exporter.parameters()["width"] = max(600, widget.width() * 2)
    exporter.export(path)
