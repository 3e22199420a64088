"""A run folder: `report.json`, `metrics.jsonl`, `snapshots/NN-stage/`, analysis JSON and exports.

The runner writes it through `RunReport`; `workbench runs`, `workbench report` and the GUI's runs view
read it through `read_run` / `list_runs`, so they all agree on what a run's status is:

- `running` while the process that writes it is alive; a `running` report whose process is gone (killed,
  crashed, machine restarted) reads as `interrupted`;
- `finished`, `failed`, `cancelled` when the runner ended it.

Every snapshot folder under its final name is complete (written atomically, measured before the
rename), so an interrupted run keeps every snapshot it finished.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .environment import environment
from .io import atomic_write_text, audit, jsonable

REPORT = "report.json"
METRICS = "metrics.jsonl"
STATUSES = ("running", "finished", "failed", "cancelled", "interrupted")


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

    @property
    def path(self) -> Path:
        return self.out_dir / REPORT

    def write(self) -> Path:
        if self.writes:
            atomic_write_text(self.path, json.dumps(jsonable(self.data), indent=2, allow_nan=False))
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
            audit(self.out_dir / METRICS)
            self._metrics = open(self.out_dir / METRICS, "a", encoding="utf-8")  # kept open for the run
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
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
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
        return list(self.report.get("snapshots", []))


def _alive(process: dict | None) -> bool:
    """Whether the process that wrote a report is still running (on this host; other hosts: assume yes)."""
    if not isinstance(process, dict) or not isinstance(process.get("pid"), int):
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
    path = Path(path)
    try:
        report = json.loads((path / REPORT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RunInfo(path, "unknown", error=f"no {REPORT}")
    except (OSError, ValueError) as exc:
        return RunInfo(path, "unknown", error=f"unreadable {REPORT} ({exc})")
    if not isinstance(report, dict):
        return RunInfo(path, "unknown", error=f"{REPORT} is not a JSON object")
    status = str(report.get("status", "unknown"))
    if status == "ok":                  # written by earlier versions
        status = "finished"
    if status == "running" and not _alive(report.get("process")):
        status = "interrupted"
    return RunInfo(path, status, report)


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run folder directly under `runs_dir` (newest first); hidden temporary folders are skipped."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [read_run(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / REPORT).exists()]
    return sorted(runs, key=lambda r: (r.path / REPORT).stat().st_mtime, reverse=True)


def read_metrics(path: str | Path) -> list[dict]:
    """The metric points of a run (a line cut short by a kill is skipped)."""
    points = []
    try:
        with open(Path(path) / METRICS, encoding="utf-8") as fh:
            for line in fh:
                try:
                    point = json.loads(line)
                except ValueError:
                    continue
                if isinstance(point, dict):
                    points.append(point)
    except FileNotFoundError:
        pass
    return points


ANALYSES = ("sensitivity", "early_exit", "slimmable")   # <run folder>/<name>.json, written by `Session.publish`


def read_analysis(path: str | Path) -> dict[str, dict]:
    """The analysis results a run published (name -> its JSON object); missing or unreadable files are left out."""
    out = {}
    for name in ANALYSES:
        try:
            value = json.loads((Path(path) / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            out[name] = value
    return out
