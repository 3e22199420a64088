"""Run a plain function on a worker thread and get its result (or its error) back on the GUI thread.

Used for everything slow that is not a recipe run: loading and measuring a model, reading a
layer's weights, exporting a snapshot. Results are plain data (dicts, numpy arrays), never modules.
`run_task` starts one job; a `TaskSlot` holds one job per purpose, where only the latest request counts.
"""
from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from ...core.errors import ErrorInfo

BACKGROUND_NICE = 10
_POOL: QThreadPool | None = None
_ALIVE: dict = {}   # task -> its relay, kept alive until the result is delivered (or the task is taken back)


def background_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: per thread), so on a busy machine the
    GUI thread gets the CPU before our own background work does."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            if current < BACKGROUND_NICE:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except OSError:
            pass


def pool() -> QThreadPool:
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(2)
    return _POOL


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)       # ErrorInfo


class Task(QRunnable):
    """One call of `fn(*args)`; connect to `signals.done` / `signals.failed` (both on the GUI thread)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args = fn, args
        self.signals = _Signals()
        self.finished = False

    def run(self) -> None:
        background_priority()
        try:
            outcome: tuple[str, Any] = ("done", self.fn(*self.args))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error for the user
            outcome = ("failed", ErrorInfo.of(exc, traceback.format_exc()))
        self.finished = True
        if shiboken6.isValid(self.signals):    # else the application is shutting down: nobody is left to tell
            getattr(self.signals, outcome[0]).emit(outcome[1])


class _Relay(QObject):
    """Lives on the GUI thread; its slots (queued) call the task's callbacks there."""

    def __init__(self, task: Task, on_done, on_error) -> None:
        super().__init__()
        self.task, self.on_done, self.on_error = task, on_done, on_error
        queued = Qt.ConnectionType.QueuedConnection
        task.signals.done.connect(self.done, queued)
        task.signals.failed.connect(self.failed, queued)

    @Slot(object)
    def done(self, result: Any) -> None:
        _ALIVE.pop(self.task, None)
        _deliver(self.on_done, result)

    @Slot(object)
    def failed(self, error: ErrorInfo) -> None:
        _ALIVE.pop(self.task, None)
        _deliver(self.on_error, error)


def _deliver(callback: Callable[..., None] | None, *args: Any) -> None:
    """Call back, unless the widget that asked was closed and deleted in the meantime."""
    if callback is None:
        return
    if all(shiboken6.isValid(owner) for owner in _owners(callback)):
        callback(*args)


def _owners(callback: Callable[..., None]) -> list[QObject]:
    """The Qt objects a callback acts on: the object of a bound method, the ones a lambda closes over."""
    found = [getattr(callback, "__self__", None)]
    found += [cell.cell_contents for cell in getattr(callback, "__closure__", None) or () if _filled(cell)]
    return [obj for obj in found if isinstance(obj, QObject)]


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def run_task(fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None,
             on_error: Callable[[ErrorInfo], None] | None = None) -> Task:
    """Start `fn(*args)` on the pool; callbacks run on the GUI thread."""
    return _start(Task(fn, *args), on_done, on_error)


def _start(task: Task, on_done, on_error) -> Task:
    _ALIVE[task] = _Relay(task, on_done, on_error)
    pool().start(task)
    return task


class TaskSlot:
    """One job at a time for one purpose (a model load, a snapshot browse, a layer's arrays): the latest request wins.

    `submit` supersedes the slot's previous job: a job still waiting in the pool's queue is taken out of it and never
    runs; a job already running finishes, but its result (or error) is dropped. Callbacks run on the GUI thread.
    """

    def __init__(self) -> None:
        self.task: Task | None = None   # the job whose result will be delivered

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[ErrorInfo], None] | None = None) -> Task:
        self.cancel()
        task = self.task = Task(fn, *args)
        return _start(task, lambda result: self._finish(task, on_done, result),
                      lambda error: self._finish(task, on_error, error))

    def cancel(self) -> None:
        """Forget the current job: out of the queue if it has not started, its result ignored if it has."""
        task, self.task = self.task, None
        if task is not None and pool().tryTake(task):
            _ALIVE.pop(task, None)

    def pending(self) -> bool:
        return self.task is not None

    def _finish(self, task: Task, callback, *args: Any) -> None:
        if task is not self.task:
            return   # superseded while it ran
        self.task = None
        _deliver(callback, *args)


def busy() -> bool:
    return bool(_ALIVE)
