"""Starting, stopping and following a run: passes a RunWorker's events on to the panels and reports failures."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from ...core.events import RunFinished, SnapshotSaved, StageFailed, StageStarted
from ...core.recipe import Recipe
from ...core.run_folder import mark_ended
from .pump import process_events
from .worker import RunWorker


class RunControl(QObject):
    """One run at a time. `stateChanged(running)`; `stageChanged(text)` for the status bar; `failed(title, message,
    details)` when a stage fails or the run cannot start or crashes (the window shows it; a stop is not a failure)."""

    stateChanged = Signal(bool)
    stageChanged = Signal(str)
    snapshotSaved = Signal(str, dict)   # run dir, report row with absolute path and layers
    runStarted = Signal(str, str)       # run dir, title
    runEnded = Signal(str, bool, str)   # run dir, ok, message
    notStarted = Signal(str, str)       # run dir, why: the pre-run check refused it (nothing was written)
    failed = Signal(str, str, str)      # title, message, details

    KILL_AFTER_MS = 5000                # Stop: a stage that has not ended by then is ended by killing its process

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.worker: RunWorker | None = None
        self.out_dir = ""
        self.last_failure: StageFailed | None = None
        self.listeners: list = []       # callables taking each event (panels)
        self.in_process = False         # True: run on a thread of this process (tests patch stages that way; one process)
        self.killed = False             # Stop had to kill the run's process
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    def running(self) -> bool:
        return self.worker is not None and not self.worker.finished

    def start(self, recipe: Recipe, model: str, data: str | None, runs_dir: str, device: str,
              arch: str | None = None, trust: bool = False, nproc: int = 1) -> bool:
        """Start a run in a new folder under `runs_dir`; `nproc` > 1: that many processes under torchrun."""
        if self.running():
            return False
        name = (recipe.name or "run").replace(" ", "_").replace("/", "_")
        out = Path(runs_dir) / f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
        n = 1
        while out.exists():
            n += 1
            out = out.with_name(f"{out.name.split('~')[0]}~{n}")
        self.out_dir = str(out.resolve())
        self.last_failure = None
        self.killed = False
        worker = self.worker = RunWorker(recipe, self.in_process, nproc, model=model, data=data, out_dir=self.out_dir,
                                         device=device, arch=arch, trust=trust)
        queued = Qt.ConnectionType.QueuedConnection   # slots run on the GUI thread, whatever the sender
        worker.event.connect(self._on_event, queued)
        worker.failedToStart.connect(self._failed_to_start, queued)
        worker.crashed.connect(self._crashed, queued)
        worker.done.connect(self._done, queued)
        self.runStarted.emit(self.out_dir, f"{out.name} (running)")
        self.stateChanged.emit(True)
        self.stageChanged.emit("preparing…")
        worker.start()
        return True

    def stop(self) -> None:
        """Cancel at the run's next event; if the stage has not ended after KILL_AFTER_MS, kill its process."""
        if self.running():
            self.worker.cancel()
            self.stageChanged.emit("stopping…")
            if not self.worker.in_process:
                self._kill_timer.start(self.KILL_AFTER_MS)

    @Slot()
    def _kill(self) -> None:
        kill = getattr(self.worker.run, "kill", None) if self.running() else None
        if kill is None:
            return
        self.killed = True
        self.stageChanged.emit("stopping: killing the run's process…")
        kill()        # files are written atomically: every complete snapshot stays; report.json is fixed below
        mark_ended(self.out_dir, "cancelled", f"stopped by the user; the stage did not end within "
                                              f"{self.KILL_AFTER_MS // 1000} s, so its process was killed")

    def stop_and_wait(self, timeout_s: float = 20.0) -> bool:
        """Cancel and keep the event loop turning until the worker thread has ended (for closing the window)."""
        if not self.worker:
            return True
        self.worker.cancel()
        deadline, killed = time.monotonic() + timeout_s, False
        while self.worker and not self.worker.wait(20):
            process_events(20)
            if time.monotonic() > deadline:
                kill = getattr(self.worker.run, "kill", None)
                if killed or kill is None:
                    return False
                kill()   # a child process that ignores cancel; its files are written atomically
                deadline, killed = time.monotonic() + 5, True
        process_events()
        return True

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

    @Slot(str, str)
    def _failed_to_start(self, message: str, details: str) -> None:
        self.notStarted.emit(self.out_dir, message)
        self.failed.emit("Cannot run", message, details)

    @Slot(str, str)
    def _crashed(self, message: str, details: str) -> None:
        if self.killed:                  # the user asked for it: not a failure to report
            self.runEnded.emit(self.out_dir, False, "stopped")
            return
        self.runEnded.emit(self.out_dir, False, "crashed")
        self.failed.emit("Run failed", message, details)

    @Slot()
    def _done(self) -> None:
        self._kill_timer.stop()
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait(5000)
            worker.deleteLater()
        self.stateChanged.emit(False)
        self.stageChanged.emit("idle")
