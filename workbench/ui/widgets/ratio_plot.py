"""Compression ratio against accuracy for every snapshot of every run: one colour per run, test accuracy as filled
markers (what is reported) and val accuracy as hollow rings of the same colour (where decisions were taken), labels
that never overprint each other (a label that finds no free place is left out; the point's tooltip still names it)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal

from .pg_setup import ChartBox, color, nice_range, pg

LABEL_HEIGHT = 22        # pixels, when a label has not been laid out yet
CHAR_WIDTH = 7


def _overlaps(a: tuple, b: tuple) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


class RatioPlot(ChartBox):
    """`set_points([{"key", "ratio", "accuracy", "val_accuracy", "label", "run"}])`; `select(key)`; `clicked(key)`."""

    clicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__("Compression ratio vs accuracy (every snapshot; click one to select it)",
                         "compression ratio (×)", "test accuracy (%) · ○ val", parent)
        self.points: list[dict] = []
        self.selected: str | None = None
        self.val_scatter = pg.ScatterPlotItem(hoverable=True, tip=lambda x, y, data: f"{data}\nratio {x:.1f}×, val accuracy {y:.2f}%")
        self.val_scatter.sigClicked.connect(self._clicked)
        self.plot.addItem(self.val_scatter)
        self.scatter = pg.ScatterPlotItem(hoverable=True, tip=lambda x, y, data: f"{data}\nratio {x:.1f}×, test accuracy {y:.2f}%")
        self.scatter.sigClicked.connect(self._clicked)
        self.plot.addItem(self.scatter)
        self.labels: list[tuple[pg.TextItem, float, float]] = []
        self._place_timer = QTimer(self, singleShot=True, interval=30)
        self._place_timer.timeout.connect(self.place_labels)
        vb = self.plot.getPlotItem().getViewBox()
        vb.sigRangeChanged.connect(lambda *_: self._place_timer.start())
        vb.sigResized.connect(lambda *_: self._place_timer.start())

    def runs(self) -> list[str]:
        return list(dict.fromkeys(p.get("run") or str(Path(p["key"]).parent.parent) for p in self.points))

    def set_points(self, points: list[dict]) -> None:
        self.points = [p for p in points if p.get("ratio") and p.get("accuracy") is not None]
        self.draw()

    def select(self, key: str | None) -> None:
        self.selected = key
        self.draw(keep_range=True)

    def draw(self, keep_range: bool = False) -> None:
        runs = self.runs()
        colour = {r: color(i) for i, r in enumerate(runs)}
        spots, rings = [], []
        for p in self.points:
            run = p.get("run") or str(Path(p["key"]).parent.parent)
            chosen = p["key"] == self.selected
            data = p["label"] + "\n" + p["key"]
            spots.append({"pos": (p["ratio"], 100 * p["accuracy"]), "data": data,
                          "brush": pg.mkBrush(colour[run]), "size": 16 if chosen else 10,
                          "pen": pg.mkPen("#111827", width=2) if chosen else pg.mkPen("w")})
            if p.get("val_accuracy") is not None:
                rings.append({"pos": (p["ratio"], 100 * p["val_accuracy"]), "data": data, "brush": pg.mkBrush(None),
                              "size": 14 if chosen else 9, "pen": pg.mkPen(colour[run], width=2.5 if chosen else 1.5)})
        self.val_scatter.setData(rings)
        self.scatter.setData(spots)
        for item, _, _ in self.labels:
            self.plot.removeItem(item)
        self.labels = []
        for p in self.points:
            item = pg.TextItem(p["label"].split(" / ")[-1], color="#374151", anchor=(0, 0))
            self.plot.addItem(item)
            self.labels.append((item, p["ratio"], 100 * p["accuracy"]))
        self.set_legend([(colour[r], Path(r).name, False) for r in runs])
        if rings:
            self.legend.setText(self.legend.text() + "&nbsp;&nbsp;&nbsp;&nbsp; ● test accuracy &nbsp; ○ val accuracy")
        if not keep_range:
            self.plot.setXRange(*nice_range([p["ratio"] for p in self.points] + [1.0], lo=0, min_span=2, pad=0.12),
                                padding=0)
            accs = [100 * p[k] for p in self.points for k in ("accuracy", "val_accuracy") if p.get(k) is not None]
            self.plot.setYRange(*nice_range(accs, lo=0, hi=100.5, min_span=4, pad=0.15), padding=0)
        self.place_labels()

    def place_labels(self) -> None:
        """Greedy: each label beside its point (right/left, above/below), where it covers no label placed before."""
        vb = self.plot.getPlotItem().getViewBox()
        px, py = vb.viewPixelSize()
        if not px or not py:
            return
        (x0, x1), (y0, y1) = vb.viewRange()
        view = (x0 / px, y0 / py, x1 / px, y1 / py)
        markers = [(x, y) for _, x, y in self.labels] + [(p["ratio"], 100 * p["val_accuracy"]) for p in self.points
                                                        if p.get("val_accuracy") is not None]
        placed: list[tuple] = [(x / px - 5, y / py - 5, x / px + 5, y / py + 5) for x, y in markers]  # the markers
        for item, x, y in sorted(self.labels, key=lambda t: (-t[2], t[1])):
            X, Y = x / px, y / py
            rect = item.boundingRect()      # in pixels: a TextItem ignores the view's scaling
            w, h = (rect.width(), rect.height()) if rect.width() else (CHAR_WIDTH * len(item.toPlainText()) + 4, LABEL_HEIGHT)
            for dx, dy in ((4, h + 2), (4, -2), (-w - 4, h + 2), (-w - 4, -2)):
                box = (X + dx, Y + dy - h, X + dx + w, Y + dy)
                inside = view[0] <= box[0] and box[2] <= view[2] and view[1] <= box[1] and box[3] <= view[3]
                if inside and not any(_overlaps(box, other) for other in placed if other != (X - 5, Y - 5, X + 5, Y + 5)):
                    item.setPos(x + dx * px, y + dy * py)
                    item.show()
                    placed.append(box)
                    break
            else:
                item.hide()

    def _clicked(self, _item, spots, *_args) -> None:
        if len(spots):
            key = str(spots[0].data()).split("\n")[-1]
            self.select(key)
            self.clicked.emit(key)
