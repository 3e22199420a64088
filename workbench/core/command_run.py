"""A run as a separate `workbench run` command (for several processes under torchrun), followed like a ChildRun.

The GUI starts local multi-process runs this way: `python -m workbench run RECIPE --out DIR --nproc N --events
DIR/events.jsonl`. Rank 0 appends each event to that file as a JSON line; `CommandRun.events()` reads them back
as they come, so the GUI shows the run like any other. `cancel()` sends SIGINT to the process group (every
rank stops at the same step); `kill()` sends SIGKILL to the group and to every process the run started (torchrun's
ranks run in sessions of their own). `cluster_commands` gives the torchrun commands that run a
saved recipe on one machine or several (the GUI's Run ▸ Cluster command… shows them).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import BadInput, ErrorInfo, ErrorKind, UnreadableFile, WorkbenchError
from .events import Event, RunError, RunFinished, from_json
from .io import append_file, open_regular, parse_json
from .limits import MAX_EVENTS_CHUNK
from .process_tree import kill_tree
from .recipe import Recipe
from .run_handle import RUN_NICE, RunOptions, RunState

POLL_SECONDS = 0.2


def run_args(recipe_path: str, options: RunOptions) -> list[str]:
    """`run RECIPE` and the flags for the Run options that are set (model, data, out_dir, device, seed, arch, runtime,
    trust)."""
    args = ["run", recipe_path]
    for value, flag in ((options.model, "--model"), (options.data, "--data"), (options.out_dir, "--out"),
                        (options.device, "--device"), (options.seed, "--seed"), (options.arch, "--arch"),
                        (options.runtime, "--runtime")):
        if value not in (None, ""):
            args += [flag, str(value)]
    if options.trust:
        args.append("--trust")
    if options.keep_head:
        args.append("--keep-head")
    if options.replace_head:
        args.append("--replace-head")
    return args


def command_line(recipe_path: str, options: RunOptions, events: str | None = None) -> list[str]:
    """The `workbench run` arguments for a recipe file and Run options (model, data, out_dir, device, nproc ...)."""
    args = run_args(recipe_path, options)
    args[2:2] = ["--nproc", str(options.nproc)]
    if events:
        args += ["--events", events]
    return args


def cluster_commands(recipe_path: str, out_dir: str, nproc: int, nodes: int = 2, host: str = "HOST",
                     run_id: str = "run", device: str = "cuda", options: RunOptions | None = None,
                     port: int = 29500) -> list[tuple[str, str]]:
    """(what it is, shell command) for a saved recipe: torchrun on one machine with `nproc` processes, torchrun on
    `nodes` machines (the same command on each, c10d rendezvous at host:port), and `workbench run --nproc` here."""
    opts = dataclasses.replace(options or RunOptions(), out_dir=out_dir, device=device, nproc=nproc)
    module = ["-m", "workbench", *run_args(recipe_path, opts)]
    each = "GPU" if device == "cuda" else "process"
    backend = "nccl, one GPU per process" if device == "cuda" else "gloo"
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host}:{port}", "--rdzv-id", run_id]
    return [
        (f"One machine with {_n(nproc, each)} ({backend}):",
         shlex.join(["torchrun", "--nproc-per-node", str(nproc), *module])),
        (f"{_n(nodes, 'machine')} with {_n(nproc, each)} each ({_n(nodes * nproc, 'process')}): the same command on "
         f"every machine.\n{host}:{port} is one of them that all reach; the recipe and --out on a shared file system.",
         shlex.join(["torchrun", "--nnodes", str(nodes), "--nproc-per-node", str(nproc), *rdzv]) + " \\\n    "
         + shlex.join(module)),
        (f"This machine, {_n(nproc, 'process')} (torchrun --standalone under the hood):",
         shlex.join(["workbench", *command_line(recipe_path, opts)])),
    ]


def _n(count: int, word: str) -> str:
    return f"1 {word}" if count == 1 else f"{count} {word}{'es' if word.endswith('s') else 's'}"


def cluster_text(commands: list[tuple[str, str]]) -> str:
    """The commands as a shell snippet: each under its comment."""
    return "\n\n".join("".join(f"# {line}\n" for line in what.splitlines()) + command for what, command in commands) + "\n"


class CommandRun:
    """A `workbench run --nproc N` process followed through its events file (a RunHandle).

    Its output goes to `process.log` in the run folder, never to a pipe (a pipe nobody reads fills after 64 KiB,
    rank 0 then blocks on a write and every other rank waits in a collective forever). An error reaches this side
    as a `RunError` event (a typed ErrorInfo) that rank 0 writes before it exits; a process that dies without one
    is reported with its exit code and the end of its log."""

    LOG_NAME = "process.log"
    KILL_WAIT_S = 5.0

    def __init__(self, recipe: Recipe, options: RunOptions) -> None:
        if not options.out_dir:
            raise BadInput("a run of several processes needs an output folder")
        self.options = options
        out = Path(options.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.recipe_path = out / "recipe.yaml"
        recipe.save(self.recipe_path)
        self.events_path = out / "events.jsonl"
        self.log_path = out / self.LOG_NAME
        nice = [found, "-n", str(RUN_NICE)] if (found := shutil.which("nice")) else []   # every rank, as ChildRun
        self.argv = [*nice, sys.executable, "-m", "workbench",
                     *command_line(str(self.recipe_path), options, str(self.events_path))]
        self._process: subprocess.Popen[bytes] | None = None
        self._state = RunState.NEW
        self._cancelled = False

    @property
    def out_dir(self) -> Path:
        return Path(str(self.options.out_dir))

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def cancel(self) -> None:
        self._cancelled = True
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL to every process of the run; waits up to KILL_WAIT_S for them: call it off the GUI thread."""
        if self._process and self._process.poll() is None:
            self._finish(RunState.KILLED)
            kill_tree(self._process.pid, signal.SIGKILL)
            self._process.wait(self.KILL_WAIT_S)

    def events(self) -> Iterator[Event]:
        self._state = RunState.RUNNING
        with append_file(self.log_path) as log:
            self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        offset, ended = 0, False
        try:
            while not ended:
                exited = self._process.poll() is not None
                lines, offset = _new_lines(self.events_path, offset)
                for line in lines:
                    event = from_json(parse_json(line, self.events_path))
                    if isinstance(event, RunError):
                        self._finish(RunState.CANCELLED if event.error.kind is ErrorKind.CANCELLED else RunState.FAILED)
                        raise event.error.exception()
                    if isinstance(event, RunFinished):
                        ended = True
                        self._finish(RunState.FINISHED if event.ok else
                                     RunState.CANCELLED if self._cancelled else RunState.FAILED)
                    yield event
                if exited and not ended:
                    self._finish(RunState.FAILED)
                    raise self._died()
                if not ended:
                    time.sleep(POLL_SECONDS)
        finally:
            if not ended:
                self.kill()
            self._finish(RunState.CANCELLED if self._cancelled else RunState.FAILED)

    def _died(self) -> WorkbenchError:
        """The processes ended without a RunFinished or a RunError: the exit code and the end of the log say why."""
        assert self._process is not None
        code = self._process.returncode
        tail = _log_tail(self.log_path)
        last = tail.strip().splitlines()[-1] if tail.strip() else f"exit code {code}"
        info = ErrorInfo(ErrorKind.BAD_INPUT if code == 2 else ErrorKind.CRASHED,
                         f"the run's processes ended (exit code {code}): {last}", tail)
        return info.exception()

    def _finish(self, state: RunState) -> None:
        if self._state is RunState.RUNNING:
            self._state = state


def _log_tail(path: Path, size: int = 8192) -> str:
    """The end of the run's log (its last `size` bytes), for the error's details."""
    try:
        with open_regular(path) as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - size))
            return fh.read(size).decode("utf-8", "replace")
    except UnreadableFile:
        return ""


def _new_lines(path: Path, offset: int) -> tuple[list[str], int]:
    """Complete lines appended to `path` since `offset` (a line still being written waits for next time); at
    most MAX_EVENTS_CHUNK bytes a call, from a regular file only (never a link, a FIFO or a device)."""
    try:
        with open_regular(path) as fh:
            fh.seek(offset)
            data = fh.read(MAX_EVENTS_CHUNK)
    except UnreadableFile as exc:
        if exc.missing:
            return [], offset
        raise
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) == MAX_EVENTS_CHUNK:
        raise UnreadableFile(path, f"a line longer than {MAX_EVENTS_CHUNK:,} bytes")
    lines = data[:end].decode("utf-8", "replace").split("\n")
    return [line for line in lines if line.strip()], offset + end
