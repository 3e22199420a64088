"""A run folder: `report.json`, `metrics.jsonl`, `snapshots/NN-stage/`, analysis JSON and exports.

The runner writes it through `RunReport`; `workbench runs`, `workbench report` and the GUI's runs view
read it through `read_run` / `list_runs`, so they all agree on what a run's status is:

- `running` while the process that writes it is alive; a `running` report whose process is gone (killed,
  crashed, machine restarted) reads as `interrupted`;
- `finished`, `failed`, `cancelled` when the runner ended it.

Every snapshot folder under its final name is complete (written atomically, measured before the
rename), so an interrupted run keeps every snapshot it finished.

Reading is bounded (`io.read_json`): a file that is a link, a FIFO or a device, too large or nested too deep
makes its run "unreadable" with the reason, never a hang or a traceback. Writing never follows a link: a run
refuses an output folder where one of the names it writes is a link (`check_no_links`).
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .environment import environment
from .errors import BadInput, UnreadableFile
from .io import append_file, atomic_write_text, jsonable, read_json, read_jsonl
from .limits import MAX_JSON_BYTES, MAX_METRICS_BYTES, MAX_METRICS_LINES, MAX_REPORT_BYTES, clip

REPORT = "report.json"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"             # the events file of a run the GUI follows (`workbench run --events`)
STATUSES = ("running", "finished", "failed", "cancelled", "interrupted")
ANALYSES = ("sensitivity", "early_exit", "slimmable")   # <run folder>/<name>.json, written by `Session.publish`
# every name a run writes directly in its folder: none of them may be a link planted there beforehand
OWN_NAMES = (REPORT, METRICS, EVENTS, "recipe.yaml", "snapshots", "exports",
             *(f"{name}.json" for name in (*ANALYSES, "auto")))


def check_no_links(out_dir: str | Path, names: tuple[str, ...] = OWN_NAMES) -> None:
    """BadInput naming the first of `names` in `out_dir` that is a symbolic link (writing there would follow it
    out of the run folder)."""
    for name in names:
        if os.path.islink(os.path.join(out_dir, name)):
            raise BadInput(f"--out {clip(out_dir, 200)}: {clip(name)} is a symbolic link; a run never writes "
                           "through a link (remove it, or choose another folder)")


class RunReport:
    """The report.json of one run, rewritten atomically whenever it changes; metric points appended to metrics.jsonl."""

    def __init__(self, out_dir: Path, base: dict[str, Any], device: str, world_size: int = 1,
                 backend: str | None = None, writes: bool = True) -> None:
        self.out_dir = out_dir
        self.writes = writes            # False on the ranks other than 0 under torchrun: they keep no files
        self.data: dict[str, Any] = {**base, "status": "running",
                                     "environment": environment(device, world_size, backend),
                                     "process": {"pid": os.getpid(), "host": socket.gethostname()},
                                     "snapshots": [], "exports": []}
        self._metrics = None
        if writes:
            check_no_links(out_dir)

    @property
    def path(self) -> Path:
        return self.out_dir / REPORT

    def write(self) -> Path:
        if self.writes:
            atomic_write_text(self.path, json.dumps(jsonable(self.data), indent=2, allow_nan=False), root=self.out_dir)
        return self.path

    def end(self, status: str, message: str = "", **extra: Any) -> Path:
        assert status in STATUSES
        self.data["status"] = status
        if message:
            self.data["message"] = message
        self.data.update(extra)
        self.close()
        return self.write()

    def metric(self, stage: int, label: str, name: str, step: float, value: float) -> None:
        """One point of a curve, kept so curves can be drawn again after the run."""
        series, _, short = name.rpartition("/")
        if not self.writes:
            return
        if self._metrics is None:
            self._metrics = append_file(self.out_dir / METRICS)  # kept open for the run; never through a link
        point = {"stage": stage, "label": label, "series": series, "name": short or name, "step": step, "value": value}
        self._metrics.write(json.dumps(jsonable(point)) + "\n")
        self._metrics.flush()

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


def mark_ended(path: str | Path, status: str, message: str) -> None:
    """Set the status of a run whose process was stopped from outside (the GUI killed it after Stop)."""
    report_path = Path(path) / REPORT
    try:
        report = read_json(report_path, max_bytes=MAX_REPORT_BYTES)
    except UnreadableFile:
        return
    if isinstance(report, dict) and report.get("status") in ("running", "interrupted"):
        report.update(status=status, message=message)
        atomic_write_text(report_path, json.dumps(report, indent=2))


@dataclass
class RunInfo:
    path: Path
    status: str
    report: dict[str, Any] = field(default_factory=dict)
    error: str | None = None            # why report.json could not be read

    @property
    def snapshots(self) -> list[dict]:
        rows = self.report.get("snapshots")
        return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _alive(process: dict | None) -> bool:
    """Whether the process that wrote a report is still running (on this host; other hosts: assume yes)."""
    if not isinstance(process, dict) or not isinstance(process.get("pid"), int) or not 0 < process["pid"] < 2**31:
        return False
    if process.get("host") not in (None, socket.gethostname()):
        return True
    try:
        os.kill(process["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_run(path: str | Path) -> RunInfo:
    """A run folder's status and report; never raises: `error` says why report.json could not be read."""
    path = Path(path)
    try:
        report = read_json(path / REPORT, max_bytes=MAX_REPORT_BYTES)
    except UnreadableFile as exc:
        return RunInfo(path, "unknown", error=f"no {REPORT}" if exc.missing else f"unreadable {REPORT} ({exc.problem})")
    if not isinstance(report, dict):
        return RunInfo(path, "unknown", error=f"{REPORT} is not a JSON object")
    status = str(report.get("status", "unknown"))
    if status == "ok":                  # written by earlier versions
        status = "finished"
    if status not in STATUSES:
        status = "unknown"
    if status == "running" and not _alive(report.get("process")):
        status = "interrupted"
    return RunInfo(path, status, report)


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run folder directly under `runs_dir` (newest first); hidden temporary folders are skipped. A folder
    whose report.json cannot be read (a link, a FIFO, too large, not JSON) is listed with its `error`."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [read_run(p) for p in root.iterdir()
            if not p.name.startswith(".") and p.is_dir() and os.path.lexists(p / REPORT)]
    return sorted(runs, key=lambda r: _mtime(r.path / REPORT), reverse=True)


def read_metrics(path: str | Path) -> list[dict]:
    """The metric points of a run (a line cut short by a kill is skipped); none when it has no metrics.jsonl.
    `UnreadableFile` when the file is a link, a FIFO, larger than MAX_METRICS_BYTES or longer than
    MAX_METRICS_LINES lines."""
    try:
        points = read_jsonl(Path(path) / METRICS, max_bytes=MAX_METRICS_BYTES, max_lines=MAX_METRICS_LINES)
    except UnreadableFile as exc:
        if exc.missing:
            return []
        raise
    return [p for p in points if isinstance(p, dict)]


def read_analysis(path: str | Path) -> dict[str, dict]:
    """The analysis results a run published (name -> its JSON object); missing or unreadable files are left out."""
    out = {}
    for name in ANALYSES:
        try:
            value = read_json(Path(path) / f"{name}.json", max_bytes=MAX_JSON_BYTES, allow_nan=True)
        except UnreadableFile:
            continue
        if isinstance(value, dict):
            out[name] = value
    return out
