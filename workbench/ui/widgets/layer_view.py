"""Layer inspector: weight histogram (zero spike, codebook centroids), heat map with pruned cells, the layer's numbers."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from ...core.layer_data import LayerArrays
from .. import formatting as F
from .pg_setup import export_png, pg, plot_widget

PRUNED_RGBA = (220, 38, 38, 255)


def heat_rgba(heat: np.ndarray, pruned: np.ndarray) -> np.ndarray:
    """Magnitudes through a colour map; pruned cells drawn in red."""
    top = float(heat.max()) if heat.size else 0.0
    norm = heat / top if top > 0 else heat
    lut = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=True)
    rgba = lut[np.clip((norm * 255).astype(np.int32), 0, 255)]
    rgba[pruned] = PRUNED_RGBA
    return rgba.astype(np.ubyte)


class LayerInspector(QWidget):
    """Shows a `LayerArrays` (computed on a worker thread); never touches a module or tensor."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.arrays: LayerArrays | None = None
        self.title = QLabel("Select a layer in the model browser.")
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)
        self.log_box = QCheckBox("log scale")
        self.log_box.toggled.connect(lambda _on: self._draw_histogram())
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.log_box)
        self.hist = plot_widget("Weight histogram", "weight value", "count")
        self.heat = plot_widget("Heat map", "input", "output")
        self.heat.getPlotItem().getViewBox().invertY(True)
        self.heat.getPlotItem().getViewBox().setAspectLocked(False)
        self.image = pg.ImageItem()
        self.heat.addItem(self.image)
        self.numbers = QLabel()
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers.setWordWrap(True)
        self.numbers.setAlignment(Qt.AlignmentFlag.AlignTop)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.hist)
        split.addWidget(self.heat)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addWidget(split, 1)
        layout.addWidget(self.numbers)

    def set_loading(self, layer: str, source: str) -> None:
        self.title.setText(f"<b>{layer}</b> · loading from {source}…")

    def set_failed(self, layer: str, message: str) -> None:
        self.title.setText(f"<b>{layer}</b>: <span style='color:#b91c1c'>{message}</span>")
        self.arrays = None
        self.hist.clear()
        self.image.clear()
        self.numbers.clear()

    def show_arrays(self, arrays: LayerArrays, source: str) -> None:
        self.arrays = arrays
        self.title.setText(f"<b>{arrays.name}</b> · {arrays.type} {F.shape(arrays.shape)} · from {source}")
        self._draw_histogram()
        self._draw_heat()
        n = arrays.numbers
        extra = f" · <span style='color:#ea580c'>{n['clusters']} centroids (dashed)</span>" if "clusters" in n else ""
        key = f" · <span style='color:#dc2626'>red: {arrays.zeros:,} zero weights</span>" if arrays.zeros else ""
        down = f" · heat map down-sampled to {arrays.heat.shape[0]}×{arrays.heat.shape[1]}" if arrays.downsampled else ""
        mask = "" if arrays.mask_kept is None else f" · mask keeps {arrays.mask_kept:,}"
        if "int8_scales" in n:      # a torch.ao int8 layer: the histogram is of its dequantized weights
            scales = (f"scale {n['int8_scale_min']:.3g}" if n["int8_scales"] == 1 else
                      f"{n['int8_scales']} per-channel scales in [{n['int8_scale_min']:.3g}, {n['int8_scale_max']:.3g}]")
            extra += (f" · <span style='color:#7c3aed'>{n['int8_dtype']} weights (dequantized), {scales}, zero point"
                      f"{'s' if len(n['int8_zero_points']) > 1 else ''} {', '.join(map(str, n['int8_zero_points']))}</span>")
        self.numbers.setText(
            f"{n['params']:,} params · {n['nonzero_params']:,} non-zero · sparsity {F.percent(n['sparsity'])}{mask} · "
            f"range [{n['weight_min']:.3g}, {n['weight_max']:.3g}] · std {n['weight_std']:.3g} · "
            f"{F.count(n['distinct_values'])} distinct values{extra}{key}{down}")

    def _draw_histogram(self) -> None:
        self.hist.clear()
        a = self.arrays
        if a is None:
            return
        log = self.log_box.isChecked()
        scale = (lambda c: np.log10(1 + c)) if log else (lambda c: c)
        self.hist.getPlotItem().setLabel("left", "log10(1 + count)" if log else "count")
        counts, edges = a.hist_counts, a.hist_edges
        width = edges[1] - edges[0]
        self.hist.addItem(pg.BarGraphItem(x=(edges[:-1] + edges[1:]) / 2, height=scale(counts.astype(float)),
                                          width=width, brush="#60a5fa", pen=None, name="weights"))
        if a.zeros:
            self.hist.addItem(pg.BarGraphItem(x=[0.0], height=[scale(float(a.zeros))], width=width,
                                              brush="#dc2626", pen=None, name="zero (pruned)"))
        if a.codebook is not None:
            for c in a.codebook:
                self.hist.addItem(pg.InfiniteLine(pos=float(c), angle=90,
                                                  pen=pg.mkPen("#ea580c", width=1.2, style=Qt.PenStyle.DashLine)))

    def _draw_heat(self) -> None:
        a = self.arrays
        if a is None:
            return
        self.image.setImage(heat_rgba(a.heat, a.heat_pruned), autoLevels=False)
        rows, cols = a.heat.shape
        self.heat.setTitle(a.heat_label.split(" (")[0], size="9pt")    # the axes name out and in; the tooltip all
        self.heat.setToolTip(f"{a.heat_label}: {F.shape(a.shape)} weights shown as {rows}×{cols} cells"
                             f"{' (block maxima)' if a.downsampled else ''}; red cells are entirely zero.")
        self.heat.getPlotItem().getViewBox().setRange(xRange=(0, cols), yRange=(0, rows), padding=0)

    def export_png(self, path_stem: str) -> list[str]:
        paths = [f"{path_stem}-histogram.png", f"{path_stem}-heatmap.png"]
        export_png(self.hist, paths[0])
        export_png(self.heat, paths[1])
        return paths
