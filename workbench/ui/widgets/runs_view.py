"""Runs and their snapshots: a table of the measured numbers; compare, fork and export from here.

The runs folder is read off the GUI thread (`run_folder.list_runs` in a `TaskSlot`: the latest Refresh wins), so
the view shows what `workbench runs` prints: newest first, the same statuses, and what a killed run left behind
(debris) greyed under the run, never as a snapshot."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ...core.errors import ErrorInfo
from ...core.run_folder import RunInfo, list_runs, read_run
from .. import formatting as F
from ..qthreading.tasks import TaskSlot, run_task
from ..table_fit import ColumnFitter
from .runs_columns import COLUMNS, RUNTIME_COL, TIPS, ColumnChooser, runtime_of, snapshot_cells

PATH_ROLE = Qt.ItemDataRole.UserRole
RUN_ROLE = Qt.ItemDataRole.UserRole + 1
DEBRIS_ROLE = Qt.ItemDataRole.UserRole + 2   # True on the greyed rows naming a run's debris
EXPORT_ROLE = Qt.ItemDataRole.UserRole + 3   # True on the rows naming a run's exported files
TEST_COL, BYTES_COL = COLUMNS.index("Test acc"), COLUMNS.index("Compressed")


def children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    return [c for c in (item.child(i) for i in range(item.childCount())) if c is not None]


class RunsView(QWidget):
    snapshotSelected = Signal(str)        # snapshot folder ("" = none)
    forkRequested = Signal(str)
    exportRequested = Signal(str)
    compareRequested = Signal(str, str)
    runsSelected = Signal(list)           # run folders of the selected rows (a run or one of its snapshots)
    refreshed = Signal()                  # the runs folder was read again
    failed = Signal(str, int)             # the runs folder could not be read: (message, ms to show it)
    pointsChanged = Signal(list)          # [{"key", "ratio", "accuracy", "val_accuracy", "label", "run"}] for the scatter plot

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.runs: dict[str, QTreeWidgetItem] = {}
        self.live: set[str] = set()           # runs this window added (their titles follow the run, not the disk)
        self.newest: str | None = None        # the newest run: the latest one read or started here
        self.reader = TaskSlot()
        self.snapshots: dict[str, dict] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        for col, tip in enumerate(TIPS):
            self.tree.headerItem().setToolTip(col, tip)
        self.fitter = ColumnFitter(self.tree)
        self.columns = ColumnChooser(self.tree)      # latency on the deploy runtime, agreement: while some row has them
        self.columns.update([])
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.buttons = {}
        row = QHBoxLayout()
        for name, tip in (("Compare", "Compare two selected snapshots layer by layer"),
                          ("Fork", "Make the selected snapshot the current model"),
                          ("Export…", "Export the selected snapshot in any format"),
                          ("Refresh", "Read the runs folder again")):
            b = QPushButton(name)
            b.setToolTip(tip)
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
        """Read every run under `runs_dir` on a worker thread, then show them (keeps runs added live);
        `refreshed` once they are shown."""
        self.runs_dir = runs_dir
        if runs_dir:
            self.reader.submit(list_runs, runs_dir, on_done=self._show, on_error=self._not_read)
        else:
            self._show([])

    def loading(self) -> bool:
        """Whether a read of the runs folder is still on its way."""
        return self.reader.pending()

    def _show(self, runs: list[RunInfo]) -> None:
        for run in reversed(runs):            # oldest first, so the newest ends up on top
            key = str(Path(run.dir).resolve())
            title = f"{run.name} ({'unreadable' if run.problem else run.status})"
            item = self._run_item(key, title if key not in self.live else None, first=True)
            if run.problem:
                item.setForeground(0, self.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
                item.setToolTip(0, f"{title}\n{key}\n{run.problem}")
            for snap in run.snapshots:
                if isinstance(snap.get("path"), str) and snap["path"]:
                    self.add_snapshot(str(run.dir), snap, select=False, item=item)
            self._show_exports(item, run.report.get("exports"))
            self._show_debris(item, [str(d) for d in run.debris])
        if runs and (self.newest is None or self.newest not in self.live):
            self.newest = str(Path(runs[0].dir).resolve())
        self._emit_points()
        self.refreshed.emit()

    def _not_read(self, error: ErrorInfo) -> None:
        self.failed.emit(f"Cannot read the runs folder: {error.message}", 8000)
        self.refreshed.emit()

    def _show_debris(self, item: QTreeWidgetItem, debris: list[str]) -> None:
        """Greyed rows under a run, one per temporary file or folder a killed run left behind (never selectable)."""
        for old in children(item):
            if old.data(0, DEBRIS_ROLE):
                item.removeChild(old)
        for text in debris:
            child = QTreeWidgetItem(item, [f"debris: {text}"])
            child.setData(0, DEBRIS_ROLE, True)
            child.setData(0, PATH_ROLE, "")
            child.setFlags(Qt.ItemFlag.NoItemFlags)            # greyed, never selected as a snapshot
            child.setToolTip(0, f"Left behind by a run that was killed while writing; not a snapshot\n{text}")

    def _show_exports(self, item: QTreeWidgetItem, exports: object) -> None:
        """Rows under a run, one per exported file: its bytes and the test accuracy of the file itself (run through
        its own runtime). Not snapshots: never selected as one."""
        for old in children(item):
            if old.data(0, EXPORT_ROLE):
                item.removeChild(old)
        for e in exports if isinstance(exports, list) else []:
            if not isinstance(e, dict):
                continue
            verified = "verified" if e.get("verified") else f"NOT verified: {e.get('error')}"
            child = QTreeWidgetItem(item, [f"export · {e.get('format')}"])
            child.setData(0, EXPORT_ROLE, True)
            child.setData(0, PATH_ROLE, "")
            child.setFlags(Qt.ItemFlag.ItemIsEnabled)
            child.setToolTip(0, f"{e.get('path')}: {verified}\n{e.get('check') or ''}")
            for col, text, tip in ((TEST_COL, F.percent(e.get("accuracy"), 2), "Test accuracy of the exported file"),
                                   (BYTES_COL, F.size(e.get("bytes")), "Size of the exported file")):
                child.setText(col, text)
                child.setToolTip(col, f"{tip}: {text}")
                child.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.fitter.fit()

    def show_exports(self, run_dir: str) -> None:
        """A run that ended here: its exports, from its report.json (read off the GUI thread)."""
        key = str(Path(run_dir).resolve())
        if key in self.runs:
            run_task(read_run, run_dir, on_done=lambda info: self._exports_read(key, info))

    def _exports_read(self, key: str, info: RunInfo) -> None:
        item = self.runs.get(key)
        if item is not None:
            self._show_exports(item, info.report.get("exports"))

    def add_run(self, run_dir: str, title: str) -> QTreeWidgetItem:
        """A run started here: listed first; its title follows the run (`set_run_title`), not the disk."""
        key = str(Path(run_dir).resolve())
        self.live.add(key)
        self.newest = key
        return self._run_item(key, title, first=True)

    def _run_item(self, key: str, title: str | None, first: bool = False) -> QTreeWidgetItem:
        item = self.runs.get(key)
        if item is None:
            item = QTreeWidgetItem([title or Path(key).name])
            item.setData(0, PATH_ROLE, "")
            item.setData(0, RUN_ROLE, key)
            if first:
                self.tree.insertTopLevelItem(0, item)
            else:
                self.tree.addTopLevelItem(item)
            self.runs[key] = item
        if title is not None:
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
        key = str(Path(run_dir).resolve())
        item = self.runs.pop(key, None)
        self.live.discard(key)
        if self.newest == key:
            self.newest = None
        if item is None:
            return
        for child in children(item):
            self.snapshots.pop(child.data(0, PATH_ROLE), None)
        self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        self._emit_points()
        self._selection_changed()

    def add_snapshot(self, run_dir: str, row: dict, select: bool = True, item: QTreeWidgetItem | None = None) -> None:
        parent = item or self._run_item(str(Path(run_dir).resolve()), None)
        path = str(Path(row["path"]).resolve())
        self.snapshots[path] = row
        existing = next((c for c in children(parent) if c.data(0, PATH_ROLE) == path), None)
        child = existing or QTreeWidgetItem(parent)
        child.setText(0, f"{row.get('index', 0):02d} · {row.get('stage', '')}")
        child.setData(0, PATH_ROLE, path)
        child.setData(0, RUN_ROLE, parent.data(0, RUN_ROLE))
        child.setToolTip(0, f"{child.text(0)}\n{path}")
        greyed = self.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        for col, cell in enumerate(snapshot_cells(row), start=1):
            child.setText(col, cell.text)
            child.setToolTip(col, cell.tip)
            child.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            child.setForeground(col, greyed if cell.greyed else self.palette().brush(QPalette.ColorRole.Text))
        if runtime := runtime_of(row):           # the run row names the runtime its snapshots were timed on
            parent.setText(RUNTIME_COL, runtime)
            parent.setToolTip(RUNTIME_COL, f"This run's snapshots were timed in eager and on {runtime}")
            parent.setTextAlignment(RUNTIME_COL, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
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
        self.columns.update(list(self.snapshots.values()))

    # --- selection --------------------------------------------------------------------------------------
    def selected_paths(self) -> list[str]:
        return [p for p in (i.data(0, PATH_ROLE) for i in self.tree.selectedItems()) if p]

    def selected_runs(self) -> list[str]:
        """The run folders of the selected rows, in the order they are listed, each once."""
        chosen = {i.data(0, RUN_ROLE) for i in self.tree.selectedItems()}
        listed = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [k for k in (item.data(0, RUN_ROLE) for item in listed if item is not None) if k in chosen]

    def select(self, path: str) -> None:
        path = str(Path(path).resolve())
        for run in self.runs.values():
            for child in children(run):
                if child.data(0, PATH_ROLE) == path:
                    self.tree.setCurrentItem(child)
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
