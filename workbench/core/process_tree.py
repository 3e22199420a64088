"""A process and everything it started, for killing a run whose processes left its process group.

torchrun starts each rank in a session of its own, so a signal to the launcher's process group never reaches the
ranks: a killed multi-process run left its ranks running (each still training, at full CPU). `descendants` reads
the parent links from /proc (Linux); elsewhere it finds none, and a kill reaches the process group only.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process visible in /proc (empty where there is no /proc)."""
    out: dict[int, int] = {}
    if not PROC.is_dir():
        return out
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:                        # ended meanwhile, or not ours to read
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # after "pid (command)": state, ppid, ...
        if len(fields) > 1 and fields[1].isdigit():
            out[int(entry.name)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every process started by `pid`, its children's children included (at the moment of the call)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """`sig` to `pid`'s process group, then to every process it started (listed first: a child whose parent dies is
    handed to init and could no longer be found)."""
    below = descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    for p in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def die_with_parent(poll_s: float = 1.0) -> None:
    """A thread that SIGKILLs this process when its parent is gone (a rank whose torchrun was killed): every snapshot
    is written atomically, so the complete ones stay."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
