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

import traceback

from PySide6.QtCore import QObject, QThread, Signal

from ...core.child_run import ChildRun
from ...core.command_run import CommandRun
from ...core.errors import BadInput, WorkbenchError
from ...core.recipe import Recipe
from ...core.runner import Run
from .tasks import background_priority

CHILD_THREADS: int | None = None   # torch threads of a run's process; None: torch's default, as `workbench run` has


def make_run(recipe: Recipe, in_process: bool, nproc: int, options: dict) -> Run | ChildRun | CommandRun:
    """What follows the run: its own process (one), torchrun's processes (several) or this process (tests)."""
    if nproc > 1:
        return CommandRun(recipe, nproc, **options)
    return Run(recipe, **options) if in_process else ChildRun(recipe, CHILD_THREADS, **options)


class RunWorker(QObject):
    """Owns one Run. Signals arrive on the GUI thread (queued connections)."""

    event = Signal(object)
    failedToStart = Signal(str, str)  # message, details (BadInput before the first event)
    crashed = Signal(str, str)        # an unexpected error escaping the runner
    done = Signal()

    def __init__(self, recipe: Recipe, in_process: bool = False, nproc: int = 1, **options) -> None:
        super().__init__()
        self.in_process = in_process and nproc == 1
        self.run = make_run(recipe, self.in_process, nproc, options)
        self.thread = QThread()
        self.thread.setObjectName("workbench-run")
        self.moveToThread(self.thread)
        self.thread.started.connect(self._work)
        self.finished = False

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.run.cancel()

    def is_running(self) -> bool:
        return self.thread.isRunning() and not self.finished

    def wait(self, ms: int) -> bool:
        return self.thread.wait(ms)

    def _work(self) -> None:
        if self.in_process:
            background_priority()
        try:
            for ev in self.run.events():   # the runner already sends at most 20 Progress events a second
                self.event.emit(ev)
        except BadInput as exc:
            self.failedToStart.emit(exc.message, exc.details)
        except WorkbenchError as exc:
            self.crashed.emit(exc.message, exc.details or traceback.format_exc())
        except Exception as exc:  # noqa: BLE001 - shown to the user, the window stays usable
            self.crashed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            self.finished = True
            self.done.emit()
            self.thread.quit()
