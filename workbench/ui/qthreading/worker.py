"""Background runs: iterate the core runner's event generator on a QThread and forward events as signals.

By default the runner itself works in a child process (`core.child_run.ChildRun`), so the training
loop's Python never competes with the GUI thread for the interpreter lock; this thread only waits
for pickled events. `in_process=True` runs `core.runner.Run` on the thread itself (tests use it to
patch stages). With `nproc` > 1 the run is a `workbench run --nproc N` command under torchrun
(`core.command_run.CommandRun`), whose rank 0 writes its events to a file that this thread reads back. Either way
the GUI thread receives frozen event dataclasses (plain numbers and
paths), never modules or tensors. Stop calls `cancel()`, which the runner checks at every event,
so a stage ends within a fraction of a second and the last snapshot stays the current model.

The run's process uses as many torch threads as `workbench run` does (results depend on the thread count, so a
recipe gives the same accuracies in both); it runs at a lower priority, which keeps the window responsive.
"""
from __future__ import annotations

import dataclasses
import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal

from ...core.child_run import ChildRun
from ...core.command_run import CommandRun
from ...core.errors import ErrorInfo, ErrorKind
from ...core.recipe import Recipe
from ...core.run_handle import RunHandle, RunOptions
from ...core.runner import Run
from .tasks import background_priority

CHILD_THREADS: int | None = None   # torch threads of a run's process; None: torch's default, as `workbench run` has


def make_run(recipe: Recipe, in_process: bool, options: RunOptions) -> RunHandle:
    """What follows the run: its own process (one), torchrun's processes (several) or this process (tests)."""
    if options.nproc > 1:
        return CommandRun(recipe, options)
    if in_process:
        return Run(recipe, options)
    return ChildRun(recipe, dataclasses.replace(options, threads=options.threads or CHILD_THREADS))


class RunWorker(QObject):
    """Owns one RunHandle. Signals arrive on the GUI thread (queued connections). Nothing here blocks the GUI
    thread: events are read on the worker's QThread, and `kill()` waits for the process on a thread of its own."""

    runEvent = Signal(object)
    failed = Signal(object)           # ErrorInfo: BAD_INPUT / NEEDS_TRUST before the first event, CRASHED after
    killed = Signal()                 # kill() has ended the run's process (emitted from the killing thread)
    done = Signal()

    def __init__(self, recipe: Recipe, options: RunOptions, in_process: bool = False) -> None:
        super().__init__()
        self.in_process = in_process and options.nproc == 1
        self.run: RunHandle = make_run(recipe, self.in_process, options)
        self.qthread = QThread()
        self.qthread.setObjectName("workbench-run")
        self.moveToThread(self.qthread)
        self.qthread.started.connect(self._work)
        self.finished = False
        self._killer: threading.Thread | None = None

    def start(self) -> None:
        self.qthread.start()

    def cancel(self) -> None:
        self.run.cancel()

    def kill(self, then: Callable[[], None] | None = None) -> None:
        """End the run's process without waiting here: the escalation (SIGTERM, then SIGKILL) and `then` (e.g. the
        report's update, which writes and fsyncs a file) run on a thread of their own."""
        if self._killer is None and not self.finished:
            self._killer = threading.Thread(target=self._kill, args=(then,), name="workbench-kill", daemon=True)
            self._killer.start()

    def _kill(self, then: Callable[[], None] | None) -> None:
        self.run.kill()
        if then is not None:
            then()
        self.killed.emit()

    def is_running(self) -> bool:
        return self.qthread.isRunning() and not self.finished

    def _work(self) -> None:
        if self.in_process:
            background_priority()
        try:
            for ev in self.run.events():   # the runner already sends at most 20 Progress events a second
                self.runEvent.emit(ev)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the window stays usable
            self.failed.emit(ErrorInfo.of(exc, traceback.format_exc()))
        finally:
            killer = self._killer
            if killer is not None:     # the run is over once the kill has fixed its report (waited for here, not
                killer.join()          # on the GUI thread)
            self.finished = True
            self.done.emit()
            self.qthread.quit()


def started_before_any_event(info: ErrorInfo) -> bool:
    """Whether the run was refused before it began (nothing was written), rather than failing on the way."""
    return info.kind in (ErrorKind.BAD_INPUT, ErrorKind.NEEDS_TRUST)
