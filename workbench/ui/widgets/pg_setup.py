"""pyqtgraph, imported after PySide6 and configured once for every plot in the application."""
from __future__ import annotations

import html
from collections.abc import Sequence

import pyqtgraph as pg
import PySide6.QtCore  # noqa: F401 - PySide6 must be imported before pyqtgraph
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QRegion
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

LegendEntry = tuple[str, str, bool | str]     # (colour, name, dashed or the mark itself)

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


EXPORT_SIZE = QSize(1200, 750)   # a plot that is hidden (another tab) is laid out at this size for export
EXPORT_SCALE = 2.0               # pixels per screen pixel: tick labels and legends keep their size relative to the plot


def export_png(widget: QWidget, path: str, min_width: int = 1200) -> bool:
    """The widget as it is drawn (plot, axes, legend), rendered at twice its size or at least `min_width` pixels
    wide, so tick labels and the legend are as readable in the file as on the screen."""
    shown = widget.isVisible()
    if not shown:
        widget.resize(EXPORT_SIZE)
        layout = widget.layout()
        if layout is not None:
            layout.activate()
    size = widget.size()
    scale = max(EXPORT_SCALE, min_width / max(1, size.width()))
    image = QImage(int(size.width() * scale), int(size.height() * scale), QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        widget.render(painter, QPoint(0, 0), QRegion(), QWidget.RenderFlag.DrawChildren)
    finally:
        painter.end()
    return image.save(path)


class ChartBox(QWidget):
    """A plot with its legend outside the plotting area (underneath, wrapping), so curves are never covered.

    `plot` is the pyqtgraph PlotWidget; `set_legend([(colour, name, dashed), ...])` fills the legend."""

    def __init__(self, title: str, x_label: str = "", y_label: str = "", parent=None) -> None:
        super().__init__(parent)
        self.plot = plot_widget(title, x_label, y_label)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet("font-size: 8.5pt; padding: 0 6px;")
        self.legend.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)

    def set_legend(self, entries: Sequence[LegendEntry]) -> None:
        """(colour, name, dashed) per entry; a string instead of `dashed` is the mark itself (a point, a star)."""
        parts = [f"<span style='color:{c}; font-weight:700'>{mark if isinstance(mark, str) else '╌╌' if mark else '━━'}"
                 f"</span>&nbsp;{html.escape(name)}" for c, name, mark in entries]
        self.legend.setText("&nbsp;&nbsp;&nbsp; ".join(parts))
        self.legend.setToolTip("<br>".join(html.escape(name) for _, name, _ in entries))
        self.legend.setVisible(bool(entries))


def nice_range(values, lo: float | None = None, hi: float | None = None, min_span: float = 1.0,
               pad: float = 0.05) -> tuple[float, float]:
    """A range around `values` at least `min_span` wide (so one point does not make a range of nothing), padded,
    clipped to [lo, hi]."""
    vals = [float(v) for v in values if v is not None and v == v]
    if not vals:
        a, b = (lo if lo is not None else 0.0), (hi if hi is not None else 1.0)
        return a, b
    a, b = min(vals), max(vals)
    if b - a < min_span:
        mid = (a + b) / 2
        a, b = mid - min_span / 2, mid + min_span / 2
    span = b - a
    a, b = a - pad * span, b + pad * span
    if lo is not None:
        a = max(a, lo)
    if hi is not None:
        b = min(b, hi)
    return a, b
