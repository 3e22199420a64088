"""A run as a separate `workbench run` command (for several processes under torchrun), followed like a ChildRun.

The GUI starts local multi-process runs this way: `python -m workbench run RECIPE --out DIR --nproc N --events
DIR/events.jsonl`. Rank 0 appends each event to that file as a JSON line; `CommandRun.events()` reads them back
as they come, so the GUI shows the run like any other. `cancel()` sends SIGINT to the process group (every
rank stops at the same step); `kill()` sends SIGKILL.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import BadInput, WorkbenchError
from .events import from_json
from .recipe import Recipe

POLL_SECONDS = 0.2


def command_line(recipe_path: str, options: dict[str, Any], nproc: int, events: str | None = None) -> list[str]:
    """The `workbench run` arguments for a recipe file and Run options (model, data, out_dir, device, ...)."""
    args = ["run", recipe_path, "--nproc", str(nproc)]
    for key, flag in (("model", "--model"), ("data", "--data"), ("out_dir", "--out"), ("device", "--device"),
                      ("seed", "--seed"), ("arch", "--arch")):
        if options.get(key) not in (None, ""):
            args += [flag, str(options[key])]
    if options.get("trust"):
        args.append("--trust")
    if events:
        args += ["--events", events]
    return args


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
                    event = from_json(json.loads(line))
                    yield event
                    ended = ended or type(event).__name__ == "RunFinished"
                if ended:
                    return
                if self._process.poll() is not None:
                    lines, offset = _new_lines(self.events_path, offset)
                    yield from (from_json(json.loads(line)) for line in lines)
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
    """Complete lines appended to `path` since `offset` (a line still being written waits for next time)."""
    try:
        with open(path, encoding="utf-8") as fh:
            fh.seek(offset)
            text = fh.read()
    except FileNotFoundError:
        return [], offset
    end = text.rfind("\n") + 1
    return [line for line in text[:end].splitlines() if line.strip()], offset + len(text[:end].encode("utf-8"))
