"""The Analysis tab: one plot per kind of analysis curve (sensitivity per layer, early-exit and slimmable
trade-offs), for every run shown, in a scrolling column so each plot keeps a usable height on a small screen."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from .curves import group_identical, short_name
from .pg_setup import ChartBox, color, nice_range, pg

PLOT_HEIGHT = 300


def percent_axis(label: str) -> bool:
    return label in ("sparsity", "accuracy") or "accuracy" in label


class AnalysisPlots(QScrollArea):
    """`show_series({run name: {(x label, y label): {curve name: (xs, ys)}}})`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        box = QWidget()
        self.column = QVBoxLayout(box)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel("Sensitivity curves, early-exit and slimmable trade-offs appear here when a run that has "
                            "them is selected in Runs and snapshots (or while it runs).")
        self.empty.setWordWrap(True)
        self.column.addWidget(self.empty)
        self.column.addStretch()
        self.setWidget(box)
        self.plots: dict[tuple[str, str], ChartBox] = {}

    def show_series(self, by_run: dict[str, dict]) -> None:
        keys = list(dict.fromkeys(k for series in by_run.values() for k in series))
        self.empty.setVisible(not keys)
        for key in list(self.plots):
            if key not in keys:
                self.plots.pop(key).setParent(None)
        for key in keys:
            box = self.plots.get(key)
            if box is None:
                x, y = key
                box = self.plots[key] = ChartBox(f"{y} vs {x.split(' (')[0]}", f"{x} (%)" if percent_axis(x) else x,
                                                 f"{y} (%)" if percent_axis(y) else y)
                self.column.insertWidget(self.column.count() - 1, box)
            self._draw(box, key, by_run)
        self._fit_heights()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_heights()

    def _fit_heights(self) -> None:
        """A few plots share the visible height; more than fit get PLOT_HEIGHT each and the column scrolls."""
        if not self.plots:
            return
        spacing = self.column.spacing() * len(self.plots)
        height = max(PLOT_HEIGHT, (self.viewport().height() - spacing) // len(self.plots))
        for box in self.plots.values():
            box.setFixedHeight(height)

    def _draw(self, box: ChartBox, key: tuple[str, str], by_run: dict[str, dict]) -> None:
        x_pct, y_pct = (100.0 if percent_axis(k) else 1.0 for k in key)
        box.plot.clear()
        legend, all_x, all_y = [], [], []
        multi = len([r for r in by_run.values() if key in r]) > 1
        i = 0
        for run, series in by_run.items():
            for name, (xs, ys) in sorted(group_identical(series.get(key, {})).items()):
                xs = [x_pct * float(x) for x in xs]
                ys = [y_pct * float(y) for y in ys]
                c = color(i)
                i += 1
                box.plot.plot(xs, ys, pen=pg.mkPen(c, width=2), symbol="o", symbolSize=6, symbolBrush=c, symbolPen=None)
                label = short_name(name) if name.startswith("sensitivity/") else name.replace("/", " ")
                legend.append((c, f"{run}: {label}" if multi else label, False))
                all_x += xs
                all_y += ys
        box.set_legend(legend)
        box.plot.setXRange(*nice_range(all_x, lo=0 if x_pct > 1 else None, hi=100 if x_pct > 1 else None,
                                       min_span=1.0), padding=0)
        box.plot.setYRange(*nice_range(all_y, lo=0 if y_pct > 1 else None, hi=100.5 if y_pct > 1 else None,
                                       min_span=5.0 if y_pct > 1 else 0.01), padding=0)
