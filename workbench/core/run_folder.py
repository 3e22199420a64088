"""A run folder: `report.json`, `metrics.jsonl`, `snapshots/NN-stage/`, analysis JSON and exports.

The runner writes it through `RunReport`; `workbench runs`, `workbench report` and the GUI's runs view
(off the GUI thread) read it through `read_run` / `list_runs` and nothing else, so they all get the same
`RunInfo` (same order: newest first; same statuses):

- `running` while the process that writes it is alive: the pid in report.json's `process` exists and started
  when the writer did (its start time, recorded beside the pid, so a reused pid does not make a dead run look
  alive; reports from before start times were recorded are judged by the pid alone); a `running` report whose
  process is gone (killed, crashed, machine restarted) reads as `interrupted`;
- `finished`, `failed`, `cancelled` when the runner ended it; `unknown` when report.json cannot be read.

Every snapshot folder under its final name is complete (written atomically, measured before the
rename), so an interrupted run keeps every snapshot it finished. A run killed while writing one leaves a
hidden temporary folder (`snapshots/.01-prune.ab12cd34`): readers never show it as a snapshot, they list it
as the run's `debris` (and never delete anything).

Reading is bounded (`io.read_json`): a file that is a link, a FIFO or a device, too large or nested too deep
makes its run "unreadable" with the reason, never a hang or a traceback. Writing never follows a link: a run
refuses an output folder where one of the names it writes is a link (`check_no_links`).
"""
from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .environment import environment
from .errors import BadInput, UnreadableFile
from .io import append_file, atomic_write_text, jsonable, read_json, read_jsonl
from .limits import MAX_JSON_BYTES, MAX_METRICS_BYTES, MAX_METRICS_LINES, MAX_REPORT_BYTES, clip, is_int

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
            raise BadInput(f"--out {clip(str(out_dir), 200)}: {clip(name)} is a symbolic link; a run never writes "
                           "through a link (remove it, or choose another folder)")


class RunReport:
    """The report.json of one run, rewritten atomically whenever it changes; metric points appended to metrics.jsonl."""

    def __init__(self, out_dir: Path, base: dict[str, Any], device: str, world_size: int = 1,
                 backend: str | None = None, writes: bool = True) -> None:
        self.out_dir = out_dir
        self.writes = writes            # False on the ranks other than 0 under torchrun: they keep no files
        self.data: dict[str, Any] = {**base, "status": "running",
                                     "environment": environment(device, world_size, backend),
                                     "process": process_record(),
                                     "snapshots": [], "exports": []}
        self._metrics: TextIO | None = None
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


UNKNOWN = "unknown"                 # the status of a folder whose report.json could not be read
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
MAX_DEBRIS = 20                     # temporary entries listed per run folder (the rest are counted, not named)
MAX_SCAN = 10_000                   # entries looked at per folder when looking for debris
# what `io.atomic_dir` / `io.atomic_path` leave behind when the process dies before the rename
_TEMP_DIR = re.compile(r"\.(.+)\.[A-Za-z0-9_]{8}")
_TEMP_FILE = re.compile(r"\.(.+)\.[A-Za-z0-9_]{8}\.tmp")


@dataclass(frozen=True)
class Debris:
    """A temporary file or folder that a killed run left behind; readers list it and never delete it."""
    path: str                           # relative to the run folder, e.g. "snapshots/.01-prune.ab12cd34"
    what: str                           # e.g. "a snapshot cut short while being written"

    def __str__(self) -> str:
        return f"{self.path} ({self.what})"


@dataclass(frozen=True)
class RunInfo:
    """One run folder as every reader shows it (`workbench runs`, `workbench report`, the GUI's runs view).

    - `dir`: the folder, as found (under the runs folder, or as given); `name` is its last part.
    - `status`: one of STATUSES (a `running` report whose process is gone reads `interrupted`), or `unknown`
      when report.json could not be read; then `problem` says why, in one line, and `report` is empty.
    - `report`: report.json as read (untrusted: any key may be missing or of any type).
    - `snapshots`: the report's snapshot rows (dicts) in order, each row's `path` made absolute (under `dir`)
      where it is a usable relative or absolute path. Only complete snapshots are listed: a folder still being
      written (or cut short by a kill) is never one.
    - `debris`: temporary files and folders a killed run left behind (only for a run that is not running: a
      live run's temporary folder is a snapshot being written).
    """
    dir: Path
    status: str
    report: dict[str, Any] = field(default_factory=dict)
    snapshots: tuple[dict[str, Any], ...] = ()
    debris: tuple[Debris, ...] = ()
    problem: str | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.dir.name)


def _stat_start(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot (None where unreadable)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()     # the command name (field 2) may hold spaces and parentheses
    try:
        return int(fields[19])                      # fields[0] is field 3
    except (IndexError, ValueError):
        return None


def _psutil_start(pid: int) -> float | None:
    try:
        psutil = importlib.import_module("psutil")
        return round(float(psutil.Process(pid).create_time()), 3)
    except Exception:  # noqa: BLE001 - not installed, no such process, no access: no start time
        return None


def _boot_id() -> str | None:
    try:
        return BOOT_ID.read_text(encoding="ascii").strip()[:64] or None
    except OSError:
        return None


def process_start(pid: int) -> dict[str, Any]:
    """How to recognise process `pid` again after its pid is reused: {"start_time", "clock"[, "boot_id"]}
    ("clock": "proc" for /proc's clock ticks since boot, "psutil" for its creation time); {} where neither works."""
    if Path("/proc/self/stat").exists():
        ticks = _stat_start(pid)
        if ticks is not None:
            return {"start_time": ticks, "clock": "proc", "boot_id": _boot_id()}
    created = _psutil_start(pid)
    return {"start_time": created, "clock": "psutil"} if created is not None else {}


def process_record() -> dict[str, Any]:
    """The `process` of report.json: the writing process's pid, host and start time (`process_start`)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), **process_start(os.getpid())}


def _alive(process: object) -> bool:
    """Whether the process that wrote a report is still running: on another host, assume yes; on this one, its
    pid exists and (where the report recorded one) it started when the writer did, on this boot. A report
    from before start times were recorded is judged by its pid alone."""
    if not isinstance(process, dict) or not is_int(process.get("pid")) or not 0 < process["pid"] < 2**31:
        return False
    if process.get("host") not in (None, socket.gethostname()):
        return True
    pid: int = process["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if "start_time" not in process:
        return True
    if process.get("clock") == "proc" and process.get("boot_id") not in (None, _boot_id()):
        return False                    # the machine was restarted since: the pid is someone else's
    now = process_start(pid)
    if now.get("clock") != process.get("clock"):
        return True                     # cannot compare here: the pid is all there is
    return bool(now.get("start_time") == process["start_time"])


def _snapshot_rows(run_dir: Path, report: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    rows = report.get("snapshots")
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        rel = row.get("path")
        if isinstance(rel, str) and rel and "\0" not in rel:
            row = {**row, "path": str(run_dir / rel)}
        out.append(row)
    return tuple(out)


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    """The hidden entries of a real folder (never through a link), at most MAX_SCAN entries looked at."""
    if os.path.islink(folder) or not folder.is_dir():
        return []
    try:
        with os.scandir(folder) as entries:
            return [e for e in itertools.islice(entries, MAX_SCAN) if e.name.startswith(".")]
    except OSError:
        return []


def find_debris(run_dir: Path) -> tuple[Debris, ...]:
    """Temporary snapshot folders and temporary files (`io.atomic_dir`/`atomic_path`) left in a run folder, its
    `snapshots/` and its `exports/` by a process killed before it renamed them into place."""
    found: list[Debris] = []
    for sub, thing in (("", "a file"), ("snapshots", "a snapshot"), ("exports", "an export")):
        for entry in sorted(_scan(run_dir / sub if sub else run_dir), key=lambda e: e.name):
            is_dir = entry.is_dir(follow_symlinks=False)
            if not (_TEMP_DIR if is_dir else _TEMP_FILE).fullmatch(entry.name):
                continue
            what = thing if is_dir or sub != "snapshots" else "a file of a snapshot"
            found.append(Debris(f"{sub}/{entry.name}" if sub else entry.name, f"{what} cut short while being written"))
    if len(found) > MAX_DEBRIS:
        found = found[:MAX_DEBRIS] + [Debris("...", f"and {len(found) - MAX_DEBRIS} more temporary entries")]
    return tuple(found)


def read_run(path: str | Path) -> RunInfo:
    """A run folder's status, report, snapshots and debris; never raises: `problem` says why report.json could
    not be read. Reading changes nothing on disk."""
    path = Path(path)
    try:
        report = read_json(path / REPORT, max_bytes=MAX_REPORT_BYTES)
    except UnreadableFile as exc:
        return RunInfo(path, UNKNOWN, problem=f"no {REPORT}" if exc.missing else f"unreadable {REPORT} ({exc.problem})")
    if not isinstance(report, dict):
        return RunInfo(path, UNKNOWN, problem=f"{REPORT} is not a JSON object")
    status = str(report.get("status", UNKNOWN))
    if status == "ok":                  # written by earlier versions
        status = "finished"
    if status not in STATUSES:
        status = UNKNOWN
    if status == "running" and not _alive(report.get("process")):
        status = "interrupted"
    debris = find_debris(path) if status != "running" else ()
    return RunInfo(path, status, report, _snapshot_rows(path, report), debris)


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run folder directly under `runs_dir`, newest first (by report.json's time, then name); hidden
    temporary folders are skipped. A folder whose report.json cannot be read (a link, a FIFO, too large, not
    JSON) is listed with its `problem`. A runs folder that is missing or cannot be listed has no runs."""
    root = Path(runs_dir)
    try:
        folders = [p for p in root.iterdir()
                   if not p.name.startswith(".") and p.is_dir() and os.path.lexists(p / REPORT)]
    except OSError:
        return []
    runs = [read_run(p) for p in sorted(folders, key=lambda p: p.name, reverse=True)]
    return sorted(runs, key=lambda r: _mtime(r.dir / REPORT), reverse=True)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
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


def read_analysis(path: str | Path) -> dict[str, dict[str, Any]]:
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
