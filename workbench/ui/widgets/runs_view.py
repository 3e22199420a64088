"""Runs and their snapshots: a table of the measured numbers; compare, fork and export from here."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ...core.run_folder import read_run
from ...core.snapshot_tools import list_runs
from .. import formatting as F
from ..table_fit import ColumnFitter

COLUMNS = ("Run / snapshot", "Val acc", "Test acc", "Params", "Non-zeros", "Sparsity", "FLOPs", "Compressed", "Ratio",
           "Latency")
TIPS = ("The run (its folder under the runs folder) and its snapshots, one per stage that changed the model",
        "Top-1 accuracy on the val split, where decisions are taken (– for a run without val, or from before val existed)",
        "Top-1 accuracy on the test split, what is reported", "Parameters", "Non-zero parameters",
        "Zeros among the prunable weights (Linear and convolution weights)", "FLOPs of one forward pass (batch 1)",
        "The smallest file this snapshot was written to and read back from",
        "Baseline fp32 bytes / compressed bytes", "Median CPU latency of one batch of size 1")
PATH_ROLE = Qt.ItemDataRole.UserRole
RUN_ROLE = Qt.ItemDataRole.UserRole + 1


def cells(row: dict) -> list[str]:
    return [F.percent(row.get("val_accuracy"), 2), F.percent(row.get("accuracy"), 2), F.count(row.get("params")),
            F.count(row.get("nonzero_params")), F.percent(row.get("sparsity")), F.human(row.get("flops")),
            F.size(row.get("compressed_bytes")), F.ratio(row.get("compression_ratio")), F.ms(row.get("latency_ms"))]


class RunsView(QWidget):
    snapshotSelected = Signal(str)        # snapshot folder ("" = none)
    forkRequested = Signal(str)
    exportRequested = Signal(str)
    compareRequested = Signal(str, str)
    runsSelected = Signal(list)           # run folders of the selected rows (a run or one of its snapshots)
    refreshed = Signal()                  # the runs folder was read again
    pointsChanged = Signal(list)          # [{"key", "ratio", "accuracy", "val_accuracy", "label", "run"}] for the scatter plot

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.runs: dict[str, QTreeWidgetItem] = {}
        self.snapshots: dict[str, dict] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        for col, tip in enumerate(TIPS):
            self.tree.headerItem().setToolTip(col, tip)
        self.fitter = ColumnFitter(self.tree)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.buttons = {}
        row = QHBoxLayout()
        for name, tip in (("Compare", "Compare two selected snapshots layer by layer"),
                          ("Fork", "Make the selected snapshot the current model"),
                          ("Export…", "Export the selected snapshot in any format"),
                          ("Refresh", "Read the runs folder again")):
            b = QPushButton(name, toolTip=tip)
            row.addWidget(b)
            self.buttons[name] = b
        row.addStretch()
        self.buttons["Compare"].clicked.connect(self._compare)
        self.buttons["Fork"].clicked.connect(lambda: self._with_selected(self.forkRequested.emit))
        self.buttons["Export…"].clicked.connect(lambda: self._with_selected(self.exportRequested.emit))
        self.runs_dir = ""
        self.buttons["Refresh"].clicked.connect(lambda: self.load_dir(self.runs_dir))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        self._selection_changed()

    # --- filling ------------------------------------------------------------------------------------------
    def load_dir(self, runs_dir: str) -> None:
        """Show every run found under `runs_dir` (keeps runs added live)."""
        self.runs_dir = runs_dir
        for run in list_runs(runs_dir) if runs_dir else []:
            item = self.add_run(run["dir"], f"{run['name']} ({read_run(run['dir']).status})")
            for snap in run["snapshots"]:
                self.add_snapshot(run["dir"], snap, select=False, item=item)
        self._emit_points()
        self.refreshed.emit()

    def add_run(self, run_dir: str, title: str) -> QTreeWidgetItem:
        key = str(Path(run_dir).resolve())
        item = self.runs.get(key)
        if item is None:
            item = QTreeWidgetItem([title])
            item.setData(0, PATH_ROLE, "")
            item.setData(0, RUN_ROLE, key)
            self.tree.addTopLevelItem(item)
            self.runs[key] = item
        item.setText(0, title)
        item.setToolTip(0, f"{title}\n{key}")
        item.setExpanded(True)
        self.fitter.fit()
        return item

    def set_run_title(self, run_dir: str, title: str) -> None:
        item = self.runs.get(str(Path(run_dir).resolve()))
        if item:
            item.setText(0, title)
            item.setToolTip(0, f"{title}\n{item.data(0, RUN_ROLE)}")
            self.fitter.fit()

    def remove_run(self, run_dir: str) -> None:
        """Take a run's row away (a run that never started)."""
        item = self.runs.pop(str(Path(run_dir).resolve()), None)
        if item is None:
            return
        for i in range(item.childCount()):
            self.snapshots.pop(item.child(i).data(0, PATH_ROLE), None)
        self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        self._emit_points()
        self._selection_changed()

    def add_snapshot(self, run_dir: str, row: dict, select: bool = True, item: QTreeWidgetItem | None = None) -> None:
        parent = item or self.add_run(run_dir, Path(run_dir).name)
        path = str(Path(row["path"]).resolve())
        self.snapshots[path] = row
        existing = next((parent.child(i) for i in range(parent.childCount())
                         if parent.child(i).data(0, PATH_ROLE) == path), None)
        child = existing or QTreeWidgetItem(parent)
        child.setText(0, f"{row.get('index', 0):02d} · {row.get('stage', '')}")
        child.setData(0, PATH_ROLE, path)
        child.setData(0, RUN_ROLE, parent.data(0, RUN_ROLE))
        child.setToolTip(0, f"{child.text(0)}\n{path}")
        for col, text in enumerate(cells(row), start=1):
            child.setText(col, text)
            child.setToolTip(col, f"{COLUMNS[col]}: {text}")
            child.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._emit_points()
        self.fitter.fit()
        if select:
            self.select(path)

    def _emit_points(self) -> None:
        points = [{"key": p, "ratio": r.get("compression_ratio"), "accuracy": r.get("accuracy"),
                   "val_accuracy": r.get("val_accuracy"),
                   "run": str(Path(p).parent.parent), "label": f"{Path(p).parent.parent.name} / {Path(p).name}"}
                  for p, r in self.snapshots.items()]
        self.pointsChanged.emit(points)

    # --- selection --------------------------------------------------------------------------------------
    def selected_paths(self) -> list[str]:
        return [p for p in (i.data(0, PATH_ROLE) for i in self.tree.selectedItems()) if p]

    def selected_runs(self) -> list[str]:
        """The run folders of the selected rows, in the order they are listed, each once."""
        chosen = {i.data(0, RUN_ROLE) for i in self.tree.selectedItems()}
        return [k for k in self.runs if k in chosen]

    def select(self, path: str) -> None:
        path = str(Path(path).resolve())
        for run in self.runs.values():
            for i in range(run.childCount()):
                if run.child(i).data(0, PATH_ROLE) == path:
                    self.tree.setCurrentItem(run.child(i))
                    return

    def _selection_changed(self) -> None:
        paths = self.selected_paths()
        self.buttons["Compare"].setEnabled(len(paths) == 2)
        self.buttons["Fork"].setEnabled(len(paths) == 1)
        self.buttons["Export…"].setEnabled(len(paths) == 1)
        current = self.tree.currentItem()
        self.snapshotSelected.emit(current.data(0, PATH_ROLE) if current and current.isSelected() else "")
        self.runsSelected.emit(self.selected_runs())

    def _with_selected(self, fn) -> None:
        paths = self.selected_paths()
        if paths:
            fn(paths[0])

    def _compare(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 2:
            self.compareRequested.emit(paths[0], paths[1])
