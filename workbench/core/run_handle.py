"""What every kind of run has in common: its options (`RunOptions`), its state (`RunState`) and the `RunHandle`
protocol that `Run` (this process), `ChildRun` (a child process) and `CommandRun` (`workbench run --nproc N` under
torchrun) implement, so the GUI, the CLI and tests follow any of them the same way.

    handle: RunHandle = ChildRun(recipe, RunOptions(model="sample:digits_mlp", out_dir="runs/x"))
    for event in handle.events():      # raises a WorkbenchError (BadInput before the first event)
        ...
    handle.cancel()                    # from any thread: the run ends at its next event, as cancelled
    handle.kill()                      # the last resort; may wait a few seconds: never on a GUI thread
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from .events import Event

RUN_NICE = 10       # a run's processes yield the CPU to the window's process on a busy machine (GUI runs)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run a recipe: what the command line's flags and the GUI's choices say (None: the recipe's own)."""

    model: str | None = None
    data: str | None = None
    out_dir: str | Path | None = None    # kept as a str
    device: str = "cpu"
    seed: int | None = None
    arch: str | None = None
    trust: bool = False
    keep_head: bool = False
    replace_head: bool = False      # a checkpoint's head for another number of classes: train a new one
    nproc: int = 1                  # > 1: that many processes under torchrun (CommandRun)
    threads: int | None = None      # torch threads in a child run's process (None: torch's default, as the CLI)
    resumed_from: dict[str, str] | None = None   # {"run", "snapshot"}: a run continued from a snapshot (report.json)
    runtime: str | None = None      # the deploy runtime snapshots are measured on besides eager (None: the recipe's)

    def __post_init__(self) -> None:
        if self.out_dir is not None and not isinstance(self.out_dir, str):
            object.__setattr__(self, "out_dir", str(self.out_dir))
        if self.nproc < 1:
            raise ValueError(f"nproc must be at least 1, got {self.nproc}")

    def with_out_dir(self, out_dir: str | Path) -> RunOptions:
        return dataclasses.replace(self, out_dir=str(out_dir))


class RunState(enum.StrEnum):
    NEW = "new"                 # events() not called yet
    RUNNING = "running"
    FINISHED = "finished"       # every stage ran
    FAILED = "failed"           # a stage failed, bad input, or the process died
    CANCELLED = "cancelled"     # ended by cancel(): the last snapshot stays
    KILLED = "killed"           # ended by kill()


@runtime_checkable
class RunHandle(Protocol):
    """A run that can be followed, stopped and killed, wherever it runs."""

    options: RunOptions

    @property
    def out_dir(self) -> Path | None: ...

    @property
    def state(self) -> RunState: ...

    def events(self) -> Iterator[Event]: ...

    def cancel(self) -> None: ...

    def kill(self) -> None: ...
