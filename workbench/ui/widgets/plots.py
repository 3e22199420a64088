"""The plots: training curves, per-layer sparsity and what each layer kept, compression against accuracy, and
analysis curves, for the runs selected in the runs view (live or read back from their run folders).

Curves of a run are metric points (`curves.RunData`), laid out with every stage on one continuous x-axis. Events
only update plain data here; a timer redraws what changed at most 20 times per second, updating existing curves.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QSplitter, QTabWidget, QToolButton, QVBoxLayout, QWidget

from ...core.events import LayerStats, Metric, Series, SnapshotSaved, StageStarted
from .analysis_plots import AnalysisPlots
from .curves import RunData, is_percent, kind_of, lay_out
from .layer_bars import LayerBars, layer_rows
from .pg_setup import ChartBox, LegendEntry, color, export_png, nice_range, pg
from .ratio_plot import RatioPlot

REDRAW_MS = 50
AUTO_STYLES = {   # how the auto stage's series are drawn (plots.py's own Budget search plot)
    "auto/candidates": lambda c: {"pen": None, "symbol": "o", "symbolSize": 8, "symbolBrush": c, "symbolPen": None},
    "auto/pareto": lambda c: {"pen": pg.mkPen(c, width=2, style=Qt.PenStyle.DashLine)},
    "auto/chosen": lambda c: {"pen": None, "symbol": "star", "symbolSize": 22, "symbolBrush": "#dc2626",
                              "symbolPen": pg.mkPen("#7f1d1d")},
}


AUTO_MARKS: dict[str, bool | str] = {"auto/candidates": "●", "auto/pareto": True, "auto/chosen": "★"}   # their legend marks


def split_auto(series: dict) -> tuple[dict, dict]:
    """A run's analysis series without and with the auto stage's (auto/candidates, auto/pareto, auto/chosen)."""
    rest: dict = {}
    auto: dict = {}
    for key, curves in series.items():
        for name, xy in curves.items():
            (auto if name.startswith("auto/") else rest).setdefault(key, {})[name] = xy
    return rest, auto
HINT = "No curves yet.<br>Press Run, or select a run<br>in Runs and snapshots."

EPOCHS = "epoch (stages in order)"

class PlotsPanel(QWidget):
    """`begin_run` + `handle(event)` for a live run, `add_run(RunData)` for runs read from disk, `show_runs(keys)`
    for which are drawn; `show_layers(rows, title)` for the Layers tab. `snapshotClicked(path)` from the scatter."""

    snapshotClicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.store: dict[str, RunData] = {}     # run folder -> its curves (live or read back)
        self.shown: list[str] = []
        self.live: RunData | None = None
        self.live_stage = 0
        self.live_baseline: dict | None = None
        self.redraws = 0
        self.curves: dict[tuple, pg.PlotDataItem] = {}
        self.styles: dict[tuple, tuple] = {}   # the style each curve was last given (restyled only when it changes)
        self.lines: dict[tuple, pg.InfiniteLine] = {}
        self._drawn: tuple = ()
        self._dirty: set[str] = set()
        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

        self.loss = ChartBox("Loss", EPOCHS, "loss")                  # short titles: two charts side by side fit
        self.acc = ChartBox("Accuracy on val", EPOCHS, "accuracy (%)")  # a laptop screen without being cut
        self.acc.setToolTip("Accuracy on the val split, where decisions are taken (fine-tuning, pruning steps); an "
                            "evaluate stage's curve names its split (eval/test_accuracy)")
        self.other = ChartBox("Other metrics", EPOCHS, "value (sparsity in %)")
        for box in (self.loss, self.acc, self.other):
            box.plot.setToolTip(box.toolTip() or "x: epochs, the stages one after another (their starts dashed)")
        self.charts = {"loss": self.loss, "accuracy": self.acc, "other": self.other}
        self.hint = pg.TextItem(html=f"<div style='color:#9ca3af; text-align:center'>{HINT}</div>", anchor=(0.5, 0.5))
        self.loss.plot.addItem(self.hint)
        self.hint.setPos(0.5, 0.5)
        self.layers = LayerBars()
        self.ratio = RatioPlot()
        self.ratio.clicked.connect(self.snapshotClicked)
        self.analysis = AnalysisPlots()
        self.budget = ChartBox("Budget search (auto): every candidate", "cost", "val accuracy (%)")
        self.budget.setMinimumHeight(280)
        self.budget.hide()                       # shown above the other analysis plots while a run has auto/ series
        self.analysis.column.insertWidget(0, self.budget)

        self.tabs = QTabWidget()
        training = QSplitter(Qt.Orientation.Vertical)     # loss | accuracy above, other metrics (if any) below
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.loss)
        top.addWidget(self.acc)
        training.addWidget(top)
        training.addWidget(self.other)
        training.setStretchFactor(0, 2)
        training.setStretchFactor(1, 1)
        training.setChildrenCollapsible(False)
        self.other.hide()
        self.tabs.addTab(training, "Training")
        self.tabs.addTab(self.layers, "Layers")
        self.tabs.addTab(self.ratio, "Ratio vs accuracy")
        self.tabs.addTab(self.analysis, "Analysis")
        self.export_button = QToolButton()   # the window gives it its "Export plots as PNG…" action
        self.export_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.tabs.setCornerWidget(self.export_button, Qt.Corner.TopRightCorner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs, 1)

    # --- what the tests and scripts read ------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, list[tuple[float, float]]]:
        """"series/name" -> [(step, value)] of the runs shown."""
        out: dict[str, list] = {}
        for run in self._runs():
            for p in run.points:
                out.setdefault(f"{p['series']}/{p['name']}" if p.get("series") else p["name"], []).append((p["step"], p["value"]))
        return out

    @property
    def series(self) -> dict[tuple[str, str], dict[str, tuple]]:
        out: dict = {}
        for run in self._runs():
            for key, curves in run.series.items():
                out.setdefault(key, {}).update(curves)
        return out

    @property
    def sparsity(self) -> dict[str, float]:
        return {r["name"]: r["sparsity"] for r in self.layers.rows if r["sparsity"] is not None}

    @property
    def points(self) -> list[dict]:
        return self.ratio.points

    @property
    def scatter(self):
        return self.ratio.scatter

    # --- data in ---------------------------------------------------------------------------------------
    def begin_run(self, key: str, stages: dict[int, str]) -> None:
        """A run starts: its curves come from events; it is shown until another selection is made."""
        self.live = self.store[key] = RunData(key, Path(key).name, stages=dict(stages), live=True)
        self.live_stage, self.live_baseline = 0, None
        self.show_runs([key])

    def end_run(self) -> None:
        if self.live is not None:
            self.live.live = False
        self.live = None

    def clear_run(self) -> None:   # kept for scripts: nothing is shown until a run is selected or started
        self.show_runs([])

    def add_run(self, data: RunData) -> None:
        """Curves read back from a run folder (a live run's own curves are never replaced)."""
        current = self.store.get(data.key)
        if current is not None and current.live:
            return
        self.store[data.key] = data
        if data.key in self.shown:
            self._mark("metrics", "series")

    def show_runs(self, keys: list[str]) -> None:
        if keys != self.shown:
            self.shown = list(keys)
            self._mark("metrics", "series")

    def forget(self, key: str) -> None:
        """A run that never started: nothing of it is kept or shown."""
        self.store.pop(key, None)
        self.show_runs([k for k in self.shown if k != key])

    def drop_cached(self) -> None:
        """Forget the curves read from disk (the runs folder was read again); the live run's stay."""
        self.store = {k: v for k, v in self.store.items() if v.live}
        self._drawn = ()

    def missing(self, keys: list[str]) -> list[str]:
        return [k for k in keys if k not in self.store]

    def handle(self, event) -> None:
        run = self.live
        if run is None:
            return
        if isinstance(event, StageStarted):
            self.live_stage = event.index + 1
        elif isinstance(event, Metric):
            run.add_point(self.live_stage, event.name, event.step, event.value)
            self._mark("metrics")
        elif isinstance(event, LayerStats):
            if any("params" in v for v in event.layers.values()) and run.key in self.shown:
                self.show_layers(layer_rows(event.layers, self.live_baseline), f"{run.name}: live, during stage "
                                 f"{run.stages.get(self.live_stage, self.live_stage)}")
        elif isinstance(event, SnapshotSaved) and event.index == 0:
            self.live_baseline = event.metrics.get("layers") or {}
        elif isinstance(event, Series):
            run.add_series((event.x_label or "x", event.y_label or "y"), event.name, event.x, event.y)
            self._mark("series")

    def show_layers(self, rows: list[dict], title: str = "") -> None:
        self.layers.show_rows(rows, title)

    def show_info_layers(self, info: dict, title: str = "") -> None:
        """The Layers tab for a model's measurements (inspect rows; with "baseline" for a snapshot of a run)."""
        self.show_layers(layer_rows(info.get("layers") or [], info.get("baseline")), title)

    def set_points(self, points: list[dict]) -> None:
        self.ratio.set_points(points)

    def select_point(self, key: str | None) -> None:
        self.ratio.select(key)

    def _runs(self) -> list[RunData]:
        return [self.store[k] for k in self.shown if k in self.store]

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
        if "series" in dirty:
            runs = [run for run in self._runs() if run.series]
            self.analysis.show_series({run.name: split_auto(run.series)[0] for run in runs})
            self._draw_budget({run.name: split_auto(run.series)[1] for run in runs})

    def _draw_budget(self, by_run: dict[str, dict]) -> None:
        """The auto stage's search: candidates as points, their Pareto front as a line, the chosen one as a star."""
        box, xs_all, ys_all, legend = self.budget, [], [], []
        box.plot.clear()
        for i, (run, series) in enumerate((r, s) for r, s in by_run.items() if s):
            for (x_label, _), curves in series.items():
                box.plot.setLabel("bottom", x_label)
                for name, style in AUTO_STYLES.items():
                    if name in curves:
                        xs, ys = curves[name][0], [100.0 * y for y in curves[name][1]]
                        box.plot.plot(xs, ys, **style(color(i)))
                        legend.append(("#dc2626" if name == "auto/chosen" else color(i),
                                       f"{run}: {name.removeprefix('auto/')}" if len(by_run) > 1
                                       else name.removeprefix("auto/"), AUTO_MARKS[name]))
                        xs_all += list(xs)
                        ys_all += ys
        box.setVisible(bool(xs_all))
        self.analysis.empty.setVisible(not self.analysis.plots and not xs_all)
        if xs_all:
            box.set_legend(legend)
            box.plot.setXRange(*nice_range(xs_all, min_span=1e-9), padding=0)
            box.plot.setYRange(*nice_range(ys_all, lo=0, hi=100.5, min_span=2.0), padding=0)

    def _draw_metrics(self) -> None:
        """Curves are created once per (run, stage, series, metric); afterwards only their data changes."""
        runs = self._runs()
        signature = tuple((r.key, r.version) for r in runs)
        if signature == self._drawn:
            return
        self._drawn = signature
        multi = len(runs) > 1
        wanted, lines = set(), {}
        legends: dict[str, list[LegendEntry]] = {k: [] for k in self.charts}
        values: dict[str, list[float]] = {k: [] for k in self.charts}
        end = 0.0
        for ri, run in enumerate(runs):
            layout = lay_out(run.points, run.stages)
            end = max(end, layout.end)
            for c in layout.curves:
                colour = color(ri) if multi else color(c.stage - 1)
                scale = 100.0 if is_percent(c.name) else 1.0
                key = (run.key, c.stage, c.series, c.name)
                wanted.add(key)
                ys = [scale * v for v in c.ys]
                item = self._curve(key, c, colour)
                old_x, old_y = item.xData, item.yData
                if old_x is None or len(old_x) != len(c.xs) or (old_x[0], old_x[-1], old_y[-1]) != (c.xs[0], c.xs[-1], ys[-1]):
                    item.setData(c.xs, ys)
                values[c.kind] += ys
                entry = (colour, run.name if multi else c.label, c.rounds and not multi)
                if not c.batch and entry not in legends[c.kind]:
                    legends[c.kind].append(entry)
            for x, name in layout.boundaries[1:] if len(layout.boundaries) > 1 else []:
                lines[(run.key, x, name)] = (x, name if not multi else f"{run.name}: {name}", color(ri) if multi else "#94a3b8")
        for key in [k for k in self.curves if k not in wanted]:
            item = self.curves.pop(key)
            self.styles.pop(key, None)
            self.charts[kind_of(key[3])].plot.removeItem(item)
        self._draw_lines(lines)
        self.hint.setVisible(not wanted)
        if not wanted:                                   # the hint in the middle of an empty plot
            self.loss.plot.setXRange(0, 1, padding=0)
            self.loss.plot.setYRange(0, 1, padding=0)
        self.other.setVisible(bool(values["other"]))
        for kind, box in self.charts.items():
            box.set_legend(legends[kind])
            if values[kind]:
                box.plot.setXRange(*nice_range([0.0, end], lo=0, min_span=1.0, pad=0.02), padding=0)
        if values["loss"]:
            self.loss.plot.setYRange(0, max(values["loss"]) * 1.05 or 1.0, padding=0)
        if values["accuracy"]:
            self.acc.plot.setYRange(*nice_range(values["accuracy"], lo=0, hi=100.5, min_span=5.0), padding=0)
        if values["other"]:
            self.other.plot.setYRange(*nice_range(values["other"], min_span=1.0), padding=0)

    def _curve(self, key: tuple, c, colour: str) -> pg.PlotDataItem:
        item = self.curves.get(key)
        if item is None:
            item = self.curves[key] = self.charts[c.kind].plot.plot()
        if self.styles.get(key) == (colour, c.batch, c.rounds):
            return item
        self.styles[key] = (colour, c.batch, c.rounds)
        pen_colour = QColor(colour)
        if c.batch:
            pen_colour.setAlpha(90)
        style = Qt.PenStyle.DashLine if c.rounds else Qt.PenStyle.SolidLine
        item.setPen(pg.mkPen(pen_colour, width=1 if c.batch else 2, style=style))
        if c.batch:
            item.setSymbol(None)
        else:
            item.setSymbol("t" if c.rounds else "o")
            item.setSymbolSize(7 if c.rounds else 5)
            item.setSymbolBrush(colour)
            item.setSymbolPen(None)
        return item

    def _draw_lines(self, lines: dict) -> None:
        """Stage boundaries: a dashed vertical line where each stage starts, labelled with the stage's name."""
        for key in [k for k in self.lines if k[1:] not in lines]:
            line = self.lines.pop(key)
            self.charts[key[0]].plot.removeItem(line)
        for kind, box in self.charts.items():
            for lkey, (x, name, colour) in lines.items():
                key = (kind, *lkey)
                if key not in self.lines:
                    line = pg.InfiniteLine(x, angle=90, movable=False, pen=pg.mkPen(colour, style=Qt.PenStyle.DashLine),
                                           label=name, labelOpts={"position": 0.97, "color": "#475569",
                                                                  "rotateAxis": (1, 0), "anchors": [(1, 0), (1, 1)]})
                    box.plot.addItem(line, ignoreBounds=True)
                    self.lines[key] = line

    # --- export ---------------------------------------------------------------------------------
    def widgets(self) -> dict[str, QWidget]:
        out: dict[str, QWidget] = {"loss": self.loss, "accuracy": self.acc, "other": self.other,
                                   "layers": self.layers, "ratio_vs_accuracy": self.ratio}
        out.update({f"{y}_vs_{x}".replace(" ", "_").replace("/", "-")[:80]: w for (x, y), w in self.analysis.plots.items()})
        if not self.budget.isHidden():
            out["budget_search"] = self.budget
        return out

    def export_all(self, folder: str) -> list[str]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        paths = []
        for name, widget in self.widgets().items():
            path = str(Path(folder) / f"{name}.png")
            export_png(widget, path)
            paths.append(path)
        return paths
