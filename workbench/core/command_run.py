"""A run as a separate `workbench run` command (for several processes under torchrun), followed like a ChildRun.

The GUI starts local multi-process runs this way: `python -m workbench run RECIPE --out DIR --nproc N --events
DIR/events.jsonl`. Rank 0 appends each event to that file as a JSON line; `CommandRun.events()` reads them back
as they come, so the GUI shows the run like any other. `cancel()` sends SIGINT to the process group (every
rank stops at the same step); `kill()` sends SIGKILL. `cluster_commands` gives the torchrun commands that run a
saved recipe on one machine or several (the GUI's Run ▸ Cluster command… shows them).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import BadInput, UnreadableFile, WorkbenchError
from .events import from_json
from .io import open_regular, parse_json
from .limits import MAX_EVENTS_CHUNK
from .recipe import Recipe

POLL_SECONDS = 0.2


def run_args(recipe_path: str, options: dict[str, Any]) -> list[str]:
    """`run RECIPE` and the flags for the Run options that are set (model, data, out_dir, device, seed, arch, trust)."""
    args = ["run", recipe_path]
    for key, flag in (("model", "--model"), ("data", "--data"), ("out_dir", "--out"), ("device", "--device"),
                      ("seed", "--seed"), ("arch", "--arch")):
        if options.get(key) not in (None, ""):
            args += [flag, str(options[key])]
    if options.get("trust"):
        args.append("--trust")
    return args


def command_line(recipe_path: str, options: dict[str, Any], nproc: int, events: str | None = None) -> list[str]:
    """The `workbench run` arguments for a recipe file and Run options (model, data, out_dir, device, ...)."""
    args = run_args(recipe_path, options)
    args[2:2] = ["--nproc", str(nproc)]
    if events:
        args += ["--events", events]
    return args


def cluster_commands(recipe_path: str, out_dir: str, nproc: int, nodes: int = 2, host: str = "HOST",
                     run_id: str = "run", device: str = "cuda", options: dict[str, Any] | None = None,
                     port: int = 29500) -> list[tuple[str, str]]:
    """(what it is, shell command) for a saved recipe: torchrun on one machine with `nproc` processes, torchrun on
    `nodes` machines (the same command on each, c10d rendezvous at host:port), and `workbench run --nproc` here."""
    opts = {**(options or {}), "out_dir": out_dir, "device": device}
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
         shlex.join(["workbench", *command_line(recipe_path, opts, nproc)])),
    ]


def _n(count: int, word: str) -> str:
    return f"1 {word}" if count == 1 else f"{count} {word}{'es' if word.endswith('s') else 's'}"


def cluster_text(commands: list[tuple[str, str]]) -> str:
    """The commands as a shell snippet: each under its comment."""
    return "\n\n".join("".join(f"# {line}\n" for line in what.splitlines()) + command for what, command in commands) + "\n"


class CommandRun:
    """`events()` / `cancel()` / `kill()` like ChildRun, for a `workbench run --nproc N` process."""

    def __init__(self, recipe: Recipe, nproc: int, **options: Any) -> None:
        out = Path(options["out_dir"])
        out.mkdir(parents=True, exist_ok=True)
        self.recipe_path = out / "recipe.yaml"
        recipe.save(self.recipe_path)
        self.events_path = out / "events.jsonl"
        self.argv = [sys.executable, "-m", "workbench",
                     *command_line(str(self.recipe_path), options, nproc, str(self.events_path))]
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def cancel(self) -> None:
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGINT)

    def kill(self) -> None:
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(5)

    def events(self) -> Iterator:
        self._process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                         start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        offset, ended = 0, False
        try:
            while True:
                lines, offset = _new_lines(self.events_path, offset)
                for line in lines:
                    event = from_json(parse_json(line, self.events_path))
                    yield event
                    ended = ended or type(event).__name__ == "RunFinished"
                if ended:
                    return
                if self._process.poll() is not None:
                    lines, offset = _new_lines(self.events_path, offset)
                    yield from (from_json(parse_json(line, self.events_path)) for line in lines)
                    if any('"RunFinished"' in line for line in lines):
                        return
                    message = (self._process.stderr.read() if self._process.stderr else "").strip().splitlines()
                    last = message[-1] if message else f"exit code {self._process.returncode}"
                    if self._process.returncode == 2:
                        raise BadInput(last.removeprefix("workbench: error: "))
                    raise WorkbenchError(f"the run's processes ended: {last}")
                time.sleep(POLL_SECONDS)
        finally:
            if not ended:
                self.kill()


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
