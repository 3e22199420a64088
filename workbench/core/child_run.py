"""Run a recipe in a child process and stream its events back: the same `events()` / `cancel()` as `Run`.

A GUI that iterates `Run.events()` on a thread shares the interpreter lock with the training loop;
between torch kernels the loop's Python holds it, and the GUI thread waits. A child process has
its own interpreter, so the GUI's event loop is never held up by model code. Events are plain frozen
dataclasses, so they cross the process boundary by pickling unchanged. Children fork from a
forkserver that has imported torch, the runner, every stage and every export format once, so a run
starts in milliseconds; they run at a lower priority (nice), with torch's default thread count (as the
command line has), so a recipe gives the same numbers in both.

    run = ChildRun(recipe, RunOptions(model="sample:digits_mlp", data="sample:digits", out_dir="runs/x"))
    for event in run.events():   # raises BadInput before the first event, like Run
        ...
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput, ErrorInfo, ErrorKind, HeadMismatch, WorkbenchError
from .events import Event, RunFinished
from .recipe import Recipe
from .run_handle import RUN_NICE, RunHandle, RunOptions, RunState

if TYPE_CHECKING:
    from .data import DataSettings

POLL_SECONDS = 0.2


def _child_main(recipe: dict[str, Any], options: RunOptions, events: Any, cancel: Any, parent: int) -> None:
    try:
        os.nice(RUN_NICE)
    except (AttributeError, OSError):
        pass
    import torch

    from .runner import Run

    # torch keeps its default thread count, as `workbench run` does: the same recipe gives the same numbers in the
    # GUI and on the command line (results depend on the thread count). The lower priority keeps the GUI responsive.
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        run = Run(Recipe.from_dict(recipe), options)
        def cancel_when_asked() -> None:
            cancel.wait()
            run.cancel()
        threading.Thread(target=cancel_when_asked, daemon=True).start()
        threading.Thread(target=_cancel_when_orphaned, args=(parent, run), daemon=True).start()
        for event in run.events():
            events.put(("event", event))
    except BaseException as exc:  # noqa: BLE001 - every error reaches the parent as a typed ErrorInfo
        events.put(("error", ErrorInfo.of(exc, traceback.format_exc())))
    finally:
        events.put(("end", None))
        events.close()
        events.join_thread()


def _cancel_when_orphaned(parent: int, run: RunHandle) -> None:
    """The run's process is not a daemon (its data loader starts worker processes of its own), so it would outlive
    a parent that died without stopping it: it cancels itself (keeping every snapshot) when the parent is gone."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            run.cancel()
            return
        except OSError:
            pass


def _context() -> Any:
    """forkserver where there is one (Linux, macOS): the server imports torch and the runner once, so
    each run starts in milliseconds instead of seconds; spawn elsewhere. Never plain fork: the GUI
    process has threads."""
    if "forkserver" in mp.get_all_start_methods():
        from . import export, stages
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["workbench.core.runner", *(f"{export.__name__}.{n}" for n in export.available()),
                                    *(f"{stages.__name__}.{k}" for k in stages.available())])
        return ctx
    return mp.get_context("spawn")


class ChildRun:
    """One execution of a recipe in a fresh child process (a RunHandle)."""

    KILL_GRACE_S = 0.5        # kill(): SIGTERM, then SIGKILL after this long

    def __init__(self, recipe: Recipe, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        ctx = _context()
        self._events = ctx.Queue()
        self._cancel = ctx.Event()
        self._state = RunState.NEW
        # not a daemon: a daemonic process may not start children, and the run's data loader starts its workers
        self._process: BaseProcess = ctx.Process(target=_child_main, args=(recipe.to_dict(), self.options, self._events,
                                                              self._cancel, os.getpid()), name="workbench-run")

    @property
    def out_dir(self) -> Path | None:
        return Path(self.options.out_dir) if self.options.out_dir else None

    @property
    def state(self) -> RunState:
        return self._state

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def kill(self) -> None:
        """Last resort (the run ignores cancel): files are written atomically, so nothing is left half-written.
        Waits up to a few seconds for the process to end: call it off the GUI thread."""
        if self._process.pid is None:
            return
        if self._process.is_alive():
            self._finish(RunState.KILLED)
            self._process.terminate()
            self._process.join(self.KILL_GRACE_S)
        if self._process.is_alive():
            self._process.kill()         # SIGKILL: it cannot be ignored
            self._process.join(2)

    def events(self) -> Iterator[Event]:
        self._state = RunState.RUNNING
        self._process.start()
        ended = False
        try:
            while True:
                try:
                    kind, payload = self._events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if not self._process.is_alive():
                        self._finish(RunState.FAILED)
                        raise WorkbenchError(f"the run's process ended unexpectedly (exit code {self._process.exitcode})") from None
                    continue
                if kind == "event":
                    if isinstance(payload, RunFinished):
                        self._finish(RunState.FINISHED if payload.ok else
                                     RunState.CANCELLED if self._cancel.is_set() else RunState.FAILED)
                    yield payload
                elif kind == "error":
                    self._finish(RunState.CANCELLED if payload.kind is ErrorKind.CANCELLED else RunState.FAILED)
                    raise payload.exception()
                else:
                    ended = True
                    return
        finally:
            if ended:   # the child is exiting on its own; reap it without waiting here
                threading.Thread(target=self._process.join, daemon=True).start()
            else:       # stopped early (the caller closed the generator, or the child died)
                self.kill()
            self._finish(RunState.CANCELLED if self._cancel.is_set() else RunState.FAILED)

    def _finish(self, state: RunState) -> None:
        if self._state is RunState.RUNNING:
            self._state = state


def _trial_load(spec: str, data_spec: str | DataSettings | None, arch: str | None, trust: bool, answer: Any,
                replace_head: bool = False) -> None:
    try:
        from .data import load_data
        from .specs import load_model
        data = load_data(data_spec) if data_spec else None
        try:
            load_model(spec, data.input_shape if data else None, data.num_classes if data else None, arch=arch, trust=trust,
                       replace_head=replace_head)
        except HeadMismatch:
            raise                   # the user is asked about the head: never loaded past it
        except BadInput:
            load_model(spec, arch=arch, trust=trust)
        answer.put(None)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a typed ErrorInfo
        answer.put(ErrorInfo.of(exc))


def load_in_child(spec: str, data_spec: str | DataSettings | None = None, arch: str | None = None, trust: bool = False,
                  timeout: float = 120.0, replace_head: bool = False) -> None:
    """Load a model once in a child process first, bounded in time: a trusted file's code (TorchScript,
    pickles) may loop forever or exhaust memory, and must not take the GUI down with it. BadInput when it
    fails or takes longer than `timeout` seconds."""
    ctx = _context()
    answer = ctx.Queue()
    process = ctx.Process(target=_trial_load, args=(spec, data_spec, arch, trust, answer, replace_head), name="workbench-load", daemon=True)
    process.start()
    deadline = time.monotonic() + timeout
    error: ErrorInfo | None = ErrorInfo(ErrorKind.BAD_INPUT, f"loading did not finish within {timeout:.0f} s; stopped")
    while time.monotonic() < deadline:
        try:
            error = answer.get(timeout=POLL_SECONDS)
            break
        except queue.Empty:
            if not process.is_alive():
                error = ErrorInfo(ErrorKind.BAD_INPUT, f"the loading process died (exit code {process.exitcode})")
                break
    process.join(2)
    if process.is_alive():
        process.kill()
        process.join(2)
    if error is not None:
        message = error.message if error.message.startswith(str(spec)) else f"{spec}: {error.message}"
        if error.kind is ErrorKind.NEEDS_TRUST or error.head is not None:     # asked about (trust, a head)
            raise dataclasses.replace(error, message=message).exception()
        raise BadInput(message, error.details)       # whatever the file did when trusted, it is the file's fault
