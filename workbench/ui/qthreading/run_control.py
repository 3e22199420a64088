"""Starting, stopping and following a run: passes a RunWorker's events on to the panels and reports failures."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from ...core.errors import ErrorInfo
from ...core.events import RunFinished, SnapshotSaved, StageFailed, StageStarted
from ...core.recipe import Recipe
from ...core.run_folder import mark_ended
from ...core.run_handle import RunOptions
from .worker import RunWorker, started_before_any_event


class RunControl(QObject):
    """One run at a time. `stateChanged(running)`; `stageChanged(text)` for the status bar; `failed(title, message,
    details)` when a stage fails or the run cannot start or crashes (the window shows it; a stop is not a failure).

    Stop never blocks the GUI thread: it cancels, and KILL_AFTER_MS later (a stage that has not ended) the worker
    kills the run's process on a thread of its own; the window learns of the end through `done`, like any end."""

    stateChanged = Signal(bool)
    stageChanged = Signal(str)
    snapshotSaved = Signal(str, dict)   # run dir, report row with absolute path and layers
    runStarted = Signal(str, str)       # run dir, title
    runEnded = Signal(str, bool, str)   # run dir, ok, message
    notStarted = Signal(str, str)       # run dir, why: the pre-run check refused it (nothing was written)
    failed = Signal(str, str, str)      # title, message, details
    idle = Signal()                     # the run has ended and its worker is gone

    KILL_AFTER_MS = 5000                # Stop: a stage that has not ended by then is ended by killing its process

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.worker: RunWorker | None = None
        self.out_dir = ""
        self.last_failure: StageFailed | None = None
        self.listeners: list[Callable[[object], None]] = []       # callables taking each event (panels)
        self.in_process = False         # True: run on a thread of this process (tests patch stages that way; one process)
        self.killed = False             # Stop had to kill the run's process
        self._ending: set[RunWorker] = set()
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    def running(self) -> bool:
        return self._live_worker() is not None

    def _live_worker(self) -> RunWorker | None:
        """The worker of the run in progress; None when no run is running."""
        return self.worker if self.worker is not None and not self.worker.finished else None

    def start(self, recipe: Recipe, options: RunOptions, runs_dir: str) -> bool:
        """Start a run in a new folder under `runs_dir`; `options.nproc` > 1: that many processes under torchrun."""
        if self.running():
            return False
        out = Path(runs_dir) / f"{datetime.now():%Y%m%d-%H%M%S}-{recipe.folder_name}"
        n = 1
        while out.exists():
            n += 1
            out = out.with_name(f"{out.name.split('~')[0]}~{n}")
        self.out_dir = str(out.resolve())
        self.last_failure = None
        self.killed = False
        worker = self.worker = RunWorker(recipe, options.with_out_dir(self.out_dir), self.in_process)
        queued = Qt.ConnectionType.QueuedConnection   # slots run on the GUI thread, whatever the sender
        worker.runEvent.connect(self._on_event, queued)
        worker.failed.connect(self._failed, queued)
        worker.killed.connect(self._process_killed, queued)
        worker.done.connect(self._done, queued)
        self.runStarted.emit(self.out_dir, f"{out.name} (running)")
        self.stateChanged.emit(True)
        self.stageChanged.emit("preparing…")
        worker.start()
        return True

    def stop(self) -> None:
        """Cancel at the run's next event; if the stage has not ended after KILL_AFTER_MS, kill its process."""
        worker = self._live_worker()
        if worker is not None:
            worker.cancel()
            self.stageChanged.emit("stopping…")
            if not worker.in_process:
                self._kill_timer.start(self.KILL_AFTER_MS)

    @Slot()
    def _kill(self) -> None:
        worker = self._live_worker()
        if worker is None or worker.in_process:
            return
        self.killed = True
        self.stageChanged.emit("stopping: killing the run's process…")
        out, waited = self.out_dir, self.KILL_AFTER_MS / 1000    # off the GUI thread: kill, then fix report.json
        worker.kill(lambda: mark_ended(out, "cancelled", f"stopped by the user; the stage did not end within "
                                                          f"{waited:g} s, so its process was killed"))

    @Slot()
    def _process_killed(self) -> None:
        self.stageChanged.emit("stopping: the run's process was killed")

    @Slot(object)
    def _on_event(self, ev) -> None:
        for listener in self.listeners:
            listener(ev)
        if isinstance(ev, StageStarted):
            self.stageChanged.emit(f"stage {ev.index + 1}/{ev.total_stages}: {ev.kind}")
        elif isinstance(ev, SnapshotSaved):
            self.snapshotSaved.emit(self.out_dir, {**ev.metrics, "index": ev.index, "stage": ev.stage, "path": ev.path})
        elif isinstance(ev, StageFailed):
            self.last_failure = ev
            if not ev.cancelled:
                self.failed.emit("Stage failed", f"Stage {ev.index + 1} ({ev.kind}) failed: {ev.message}\n\n"
                                 "The model is back at the last snapshot.", ev.details)
        elif isinstance(ev, RunFinished):
            cancelled = self.last_failure is not None and self.last_failure.cancelled
            status = "finished" if ev.ok else "stopped" if cancelled else "failed"
            self.runEnded.emit(self.out_dir, ev.ok, status)

    @Slot(object)
    def _failed(self, info: ErrorInfo) -> None:
        if started_before_any_event(info):
            self.notStarted.emit(self.out_dir, info.message)
            self.failed.emit("Cannot run", info.message, info.details)
        elif self.killed:                  # the user asked for it: not a failure to report
            self.runEnded.emit(self.out_dir, False, "stopped")
        else:
            self.runEnded.emit(self.out_dir, False, "crashed")
            self.failed.emit("Run failed", info.message, info.details)

    @Slot()
    def _done(self) -> None:
        self._kill_timer.stop()
        worker, self.worker = self.worker, None
        if worker is not None:          # its thread is ending on its own: never wait for it here
            if worker.qthread.isFinished():
                worker.deleteLater()
            else:                       # kept referenced until then: a QThread must not be destroyed while it runs
                self._ending.add(worker)
                worker.qthread.finished.connect(self._reap, Qt.ConnectionType.QueuedConnection)
        self.stateChanged.emit(False)
        self.stageChanged.emit("idle")
        self.idle.emit()

    @Slot()
    def _reap(self) -> None:
        for worker in [w for w in self._ending if w.qthread.isFinished()]:
            self._ending.discard(worker)
            worker.deleteLater()
