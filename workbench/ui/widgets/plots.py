"""Live plots: training curves, per-layer sparsity, compression against accuracy, and analysis series.

Events only update plain data here; a timer redraws what changed at most 20 times per second.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QTabWidget, QToolButton, QVBoxLayout, QWidget

from ...core.events import LayerStats, Metric, Series, SnapshotSaved
from .pg_setup import color, export_png, pg, plot_widget

REDRAW_MS = 50


class PlotsPanel(QWidget):
    """Feed it runner events with `handle(event)`; `snapshotClicked(key)` when a scatter point is clicked."""

    snapshotClicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.metrics: dict[str, list[tuple[float, float]]] = {}
        self.sparsity: dict[str, float] = {}
        self.points: list[dict] = []   # {"key", "ratio", "accuracy", "label"}
        self.selected_key: str | None = None
        self.series: dict[tuple[str, str], dict[str, tuple]] = {}
        self.redraws = 0
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

        self.loss = plot_widget("Loss", "epoch", "loss")
        self.acc = plot_widget("Accuracy", "epoch", "accuracy")
        self.other = plot_widget("Other metrics", "step", "value")
        for w in (self.loss, self.acc, self.other):
            w.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(255, 255, 255, 210))
        self.bars = plot_widget("Sparsity per layer", "sparsity", "")
        self.bars.setXRange(0, 1)
        self.scatter_plot = plot_widget("Compression ratio vs accuracy (all snapshots)", "compression ratio (×)",
                                        "accuracy")
        self.scatter = pg.ScatterPlotItem(size=11, hoverable=True, tip=lambda x, y, data: f"{data}\nratio {x:.1f}×, acc {y:.4f}")
        self.scatter.sigClicked.connect(self._clicked)
        self.point_labels: list = []
        self.scatter_plot.addItem(self.scatter)
        self.series_box = QWidget()
        self.series_layout = QVBoxLayout(self.series_box)
        self.series_layout.setContentsMargins(0, 0, 0, 0)
        self.series_empty = QLabel("Sensitivity curves and early-exit trade-offs appear here when a stage reports them.")
        self.series_empty.setWordWrap(True)
        self.series_layout.addWidget(self.series_empty)
        self.series_plots: dict[tuple[str, str], pg.PlotWidget] = {}

        self.tabs = QTabWidget()
        training = QWidget()
        grid = QVBoxLayout(training)
        grid.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.loss)
        top.addWidget(self.acc)
        grid.addLayout(top, 2)
        grid.addWidget(self.other, 1)
        self.other.hide()
        for w, text in ((self.loss, "no data yet: press Run"), (self.acc, "no data yet")):
            hint = pg.TextItem(text, color="#9ca3af", anchor=(0.5, 0.5))
            hint.setPos(0.5, 0.5)
            w.addItem(hint)
            w.hint = hint  # type: ignore[attr-defined]
        self.tabs.addTab(training, "Training")
        self.tabs.addTab(self.bars, "Sparsity")
        self.tabs.addTab(self.scatter_plot, "Ratio vs accuracy")
        self.tabs.addTab(self.series_box, "Analysis")
        self.export_button = QToolButton()   # the window gives it its "Export plots as PNG…" action
        self.export_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs, 1)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(self.export_button)
        layout.addLayout(row)

    # --- data in ---------------------------------------------------------------------------------
    def clear_run(self) -> None:
        self.metrics.clear()
        self.series.clear()
        self._mark("metrics", "series")

    def handle(self, event) -> None:
        if isinstance(event, Metric):
            self.metrics.setdefault(event.name, []).append((float(event.step), float(event.value)))
            self._mark("metrics")
        elif isinstance(event, LayerStats):
            for name, stats in event.layers.items():
                if "sparsity" in stats:
                    self.sparsity[name] = float(stats["sparsity"])
            self._mark("bars")
        elif isinstance(event, SnapshotSaved):
            layers = event.metrics.get("layers") or {}
            self.sparsity = {n: float(v["sparsity"]) for n, v in layers.items() if v.get("sparsity") is not None}
            self._mark("bars")
        elif isinstance(event, Series):
            key = (event.x_label or "x", event.y_label or "y")
            self.series.setdefault(key, {})[event.name] = (tuple(event.x), tuple(event.y))
            self._mark("series")

    def set_points(self, points: list[dict]) -> None:
        self.points = [p for p in points if p.get("ratio") and p.get("accuracy") is not None]
        self._mark("scatter")

    def select_point(self, key: str | None) -> None:
        self.selected_key = key
        self._mark("scatter")

    def _mark(self, *parts: str) -> None:
        self._dirty.update(parts)
        if not self._timer.isActive():
            self._timer.start()

    # --- drawing (GUI thread, coalesced) ----------------------------------------------------------------
    def _redraw(self) -> None:
        dirty, self._dirty = self._dirty, set()
        self.redraws += 1
        if "metrics" in dirty:
            self._draw_metrics()
        if "bars" in dirty:
            self._draw_bars()
        if "scatter" in dirty:
            self._draw_scatter()
        if "series" in dirty:
            self._draw_series()

    def _draw_metrics(self) -> None:
        """Curves are created once per metric name, then only their data changes."""
        for w in (self.loss, self.acc):
            w.hint.setVisible(not self.metrics)
            if not self.metrics and w.hint.scene() is None:
                w.addItem(w.hint)
        if not self.metrics:
            for w in (self.loss, self.acc, self.other):
                w.clear()
                w.getPlotItem().legend.clear()
            self.curves.clear()
            self.other.hide()
            return
        self.other.setVisible(any("loss" not in n and "acc" not in n for n in self.metrics))
        for name, pts in self.metrics.items():
            curve = self.curves.get(name)
            if curve is None:
                i = len(self.curves)
                target = self.loss if "loss" in name else self.acc if "acc" in name else self.other
                batch = "batch" in name
                curve = self.curves[name] = target.plot(name=name, pen=pg.mkPen(color(i), width=1 if batch else 2),
                                                        symbol=None if batch else "o", symbolSize=5,
                                                        symbolBrush=color(i))
            if curve.xData is None or len(curve.xData) != len(pts):
                xs, ys = zip(*pts)
                curve.setData(xs, ys)

    def _draw_bars(self) -> None:
        self.bars.clear()
        names = list(self.sparsity)
        if not names:
            return
        values = [self.sparsity[n] for n in names]
        ys = list(range(len(names)))
        brushes = [pg.mkBrush("#dc2626" if v >= 0.5 else "#f59e0b" if v > 0 else "#93c5fd") for v in values]
        self.bars.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=ys, height=0.7, width=values, brushes=brushes, pen=None))
        axis = self.bars.getPlotItem().getAxis("left")
        step = max(1, len(names) // 30)
        axis.setTicks([[(y, names[y]) for y in ys[::step]]])
        self.bars.setYRange(-0.6, len(names) - 0.4, padding=0)
        self.bars.getPlotItem().getViewBox().invertY(True)

    def _draw_scatter(self) -> None:
        spots = []
        for p in self.points:
            chosen = p["key"] == self.selected_key
            spots.append({"pos": (p["ratio"], p["accuracy"]), "data": p["label"] + "\n" + p["key"],
                          "brush": pg.mkBrush("#dc2626" if chosen else "#2563eb"),
                          "size": 15 if chosen else 10, "pen": pg.mkPen("#111827" if chosen else None)})
        self.scatter.setData(spots)
        for label in self.point_labels:
            self.scatter_plot.removeItem(label)
        self.point_labels = []
        right = max((p["ratio"] for p in self.points), default=1.0)
        for p in self.points:
            near_right = p["ratio"] > 0.8 * right
            label = pg.TextItem(p["label"].split(" / ")[-1], color="#374151", anchor=(1.1 if near_right else -0.1, 1.1))
            label.setPos(p["ratio"], p["accuracy"])
            self.scatter_plot.addItem(label)
            self.point_labels.append(label)

    def _draw_series(self) -> None:
        self.series_empty.setVisible(not self.series)
        for key, plot in list(self.series_plots.items()):
            if key not in self.series:
                plot.setParent(None)
                del self.series_plots[key]
        for key, curves in self.series.items():
            plot = self.series_plots.get(key)
            if plot is None:
                plot = self.series_plots[key] = plot_widget(f"{key[1]} vs {key[0]}", key[0], key[1])
                plot.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(255, 255, 255, 210))
                self.series_layout.addWidget(plot)
            plot.clear()
            for i, (name, (xs, ys)) in enumerate(sorted(curves.items())):
                plot.plot(xs, ys, name=name, pen=pg.mkPen(color(i), width=2), symbol="o", symbolSize=5,
                          symbolBrush=color(i))

    def _clicked(self, _item, spots, *_args) -> None:
        if len(spots):
            key = str(spots[0].data()).split("\n")[-1]
            self.select_point(key)
            self.snapshotClicked.emit(key)

    # --- export ---------------------------------------------------------------------------------
    def widgets(self) -> dict[str, pg.PlotWidget]:
        out = {"loss": self.loss, "accuracy": self.acc, "other": self.other, "sparsity": self.bars,
               "ratio_vs_accuracy": self.scatter_plot}
        out.update({f"{y}_vs_{x}".replace(" ", "_").replace("/", "-"): w for (x, y), w in self.series_plots.items()})
        return out

    def export_all(self, folder: str) -> list[str]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        paths = []
        for name, widget in self.widgets().items():
            path = str(Path(folder) / f"{name}.png")
            export_png(widget, path)
            paths.append(path)
        return paths
