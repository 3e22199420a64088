"""Reading finished runs' curves back from their folders (metrics.jsonl, report.json, analysis JSON files) off the
GUI thread, so that a run's plots show whenever it is selected, after a restart as much as after the run."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ...core.run_folder import read_analysis, read_metrics, read_run
from .tasks import TaskSlot


def read_curves(paths: list[str]) -> list[dict]:
    """Per run folder: {"key", "points" (metrics.jsonl), "recipe" (from report.json), "analysis" (name -> JSON)}."""
    out = []
    for path in paths:
        run = read_run(path)
        if run.problem:        # not a run folder (any more): nothing to draw
            continue
        report = run.report
        out.append({"key": path, "points": read_metrics(path), "recipe": report.get("recipe"),
                    "analysis": read_analysis(path)})
    return out


class RunHistory(QObject):
    """`load(paths)`: `loaded(list of dicts)` when they are read; only the latest request lands."""

    loaded = Signal(list)
    failed = Signal(str, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.slot = TaskSlot()

    def load(self, paths: list[str]) -> None:
        if paths:
            self.slot.submit(read_curves, list(paths), on_done=self.loaded.emit,
                             on_error=lambda e: self.failed.emit(f"Cannot read the run's curves: {e.message}", 8000))
