"""The Layers tab: per layer, the sparsity of its prunable weights, and (against the run's baseline) the parameters
and output channels it kept, so structured pruning, which removes channels instead of zeroing weights, shows too."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from .. import formatting as F
from .pg_setup import ChartBox, pg

MAX_TEXT_ROWS = 40     # above this many layers, bars carry no text (the y-axis still names them)
ROW_PX = 15            # a layer name or a bar's text needs this many pixels of height: fewer, and every k-th is named


def layer_rows(layers, baseline: dict | None = None) -> list[dict]:
    """Rows {"name", "sparsity" (None: no prunable weights), "params", "channels", "params_before",
    "channels_before"} from inspect rows (a list), a snapshot's `metrics.layers` or a `LayerStats` dict (name -> numbers).

    Sparsity is the fraction of zeros among the layer's prunable weights (as `inspect`, snapshots and report.json
    count it); `baseline` ({name: {"params", "shape"}}) gives the numbers before."""
    items = layers if isinstance(layers, list) else [{"name": n, **v} for n, v in (layers or {}).items()]
    rows = []
    for r in items:
        weights, nonzero = r.get("weights"), r.get("nonzero_weights")
        sparsity = r.get("sparsity")
        if weights is not None and nonzero is not None:       # live LayerStats: zeros among the weights there are now
            sparsity = (1.0 - nonzero / weights) if weights else None
        shape = r.get("shape") or []
        channels = r.get("channels", shape[0] if shape else None)
        before = (baseline or {}).get(r["name"]) or {}
        before_shape = before.get("shape") or []
        rows.append({"name": r["name"], "sparsity": sparsity, "params": r.get("params"),
                     "channels": int(channels) if channels is not None else None,
                     "params_before": before.get("params") if baseline else None,
                     "channels_before": before_shape[0] if before_shape else None})
    return rows


def changed(rows: list[dict]) -> bool:
    """Whether any layer's parameters or channels differ from the baseline."""
    return any(r["params_before"] is not None and (r["params"] != r["params_before"] or
               (r["channels_before"] is not None and r["channels"] != r["channels_before"])) for r in rows)


def kept_text(r: dict) -> str:
    """"8/16 ch · 576/2,304 params": output channels and parameters, now / in the baseline."""
    ch = (f"{r['channels']}/{r['channels_before']} ch" if r["channels"] != r["channels_before"]
          else f"{r['channels']} ch") if r["channels"] is not None and r["channels_before"] is not None else ""
    params = f"{F.count(r['params'])}/{F.count(r['params_before'])} params"
    return f"{ch} · {params}" if ch else params


class LayerBars(QWidget):
    """`show_rows(rows, title)`; `rows` from `layer_rows`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[dict] = []
        self.texts: list = []             # the bars' value texts, shown only while each row has ROW_PX pixels
        self.title = QLabel("Select a snapshot (or run a recipe) to see what each layer kept.")
        self.title.setWordWrap(True)
        self.sparsity = ChartBox("Sparsity (zeros in prunable weights)", "sparsity (%)")
        self.kept = ChartBox("Kept against the baseline", "parameters kept (%)")
        for box in (self.sparsity, self.kept):
            box.plot.getPlotItem().getViewBox().invertY(True)
            box.plot.getPlotItem().getViewBox().setMouseEnabled(x=False, y=True)
            box.plot.setXRange(0, 100, padding=0.02)
        self.kept.plot.setYLink(self.sparsity.plot)
        self.kept.plot.getPlotItem().getAxis("left").setStyle(showValues=False)
        self.sparsity.plot.getPlotItem().getViewBox().sigResized.connect(self._fit_labels)
        self.kept.set_legend([("#cbd5e1", "before (baseline)", False), ("#60a5fa", "after", False)])
        split = self.split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.sparsity)
        split.addWidget(self.kept)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.title)
        layout.addWidget(split, 1)
        self.kept.hide()

    def show_rows(self, rows: list[dict], title: str = "") -> None:
        structural = changed(rows)
        shown = [r for r in rows if r["sparsity"] is not None or
                 (structural and r["params_before"] is not None and r["params"] != r["params_before"])]
        self.rows = shown
        self.title.setText(title or "")
        self.title.setVisible(bool(title))
        was_hidden = self.kept.isHidden()
        self.kept.setVisible(structural)
        if structural and was_hidden:
            self.split.setSizes([4000, 6000])      # shares of the width: the sparsity bars are narrower
        self._draw_sparsity()
        if structural:
            self._draw_kept()

    def label_step(self) -> int:
        """Every k-th layer is named so that the names never overlap at the plot's height now."""
        height = self.sparsity.plot.getPlotItem().getViewBox().height()
        return max(1, -(-len(self.rows) * ROW_PX // int(height))) if height > 0 else max(1, len(self.rows) // 40)

    def _fit_labels(self) -> None:
        step = self.label_step()
        names = [(i, r["name"]) for i, r in enumerate(self.rows)]
        self.sparsity.plot.getPlotItem().getAxis("left").setTicks([names[::step]])
        for item in self.texts:
            item.setVisible(step == 1 and len(self.rows) <= MAX_TEXT_ROWS)

    def _ticks(self, plot) -> None:
        plot.setXRange(0, 100, padding=0.02)
        self._fit_labels()
        plot.setYRange(-0.6, max(1, len(self.rows)) - 0.4, padding=0)

    def _draw_sparsity(self) -> None:
        plot = self.sparsity.plot
        plot.clear()
        self.texts = [t for t in self.texts if t.scene() is not None]       # the kept plot's, if drawn
        self._ticks(plot)
        ys = [i for i, r in enumerate(self.rows) if r["sparsity"] is not None]   # no bar without prunable weights
        if not ys:
            return
        values = [100 * self.rows[i]["sparsity"] for i in ys]
        brushes = [pg.mkBrush("#dc2626" if v >= 50 else "#f59e0b" if v > 0 else "#93c5fd") for v in values]
        plot.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=ys, height=0.7, width=values, brushes=brushes, pen=None))
        for y, v in zip(ys, values):
            self._text(plot, f"{v:.1f}%", min(v, 80) + 1, y)
        self._fit_labels()

    def _draw_kept(self) -> None:
        plot = self.kept.plot
        plot.clear()
        self.texts = [t for t in self.texts if t.scene() is not None]
        self._ticks(plot)
        rows = [(i, r) for i, r in enumerate(self.rows) if r["params_before"]]
        if not rows:
            return
        ys = [i for i, _ in rows]
        kept = [100 * (r["params"] or 0) / r["params_before"] for _, r in rows]
        plot.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=ys, height=0.7, width=[100] * len(ys),
                                     brush=pg.mkBrush("#e2e8f0"), pen=None))
        plot.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=ys, height=0.7, width=kept, brush=pg.mkBrush("#60a5fa"), pen=None))
        for (y, r), k in zip(rows, kept):
            self._text(plot, f"{k:.0f}%  {kept_text(r)}", 1, y)
        self._fit_labels()

    def _text(self, plot, text: str, x: float, y: float) -> None:
        item = pg.TextItem(text, color="#111827", anchor=(0, 0.5))
        item.setPos(x, y)
        plot.addItem(item)
        self.texts.append(item)
