"""Run folders written by hand for the run-folder tests (core, `workbench runs`, the GUI's runs view)."""
from __future__ import annotations

import json
import os
from pathlib import Path

NO_SUCH_PID = 2**31 - 1          # above any pid_max: never a live process
TEMP = ".01-prune.ab12cd34"      # what io.atomic_dir names the snapshot folder it is writing


def write_run(folder: Path, status: str = "finished", process: dict | None = None, mtime: float | None = None,
              snapshots: tuple[str, ...] = ("00-baseline",)) -> Path:
    rows = []
    for i, name in enumerate(snapshots):
        (folder / "snapshots" / name).mkdir(parents=True)
        (folder / "snapshots" / name / "snapshot.json").write_text("{}")
        rows.append({"index": i, "stage": name[3:], "accuracy": 0.9, "path": f"snapshots/{name}"})
    folder.mkdir(parents=True, exist_ok=True)
    report = {"status": status, "model": "sample:digits_mlp", "data": "sample:digits", "snapshots": rows}
    if process is not None:
        report["process"] = process
    (folder / "report.json").write_text(json.dumps(report))
    if mtime is not None:
        os.utime(folder / "report.json", (mtime, mtime))
    return folder


def killed_while_writing(folder: Path) -> Path:
    """A run killed while it wrote snapshot 1 (and report.json): its temporary folder and file are left."""
    write_run(folder, "running", {"pid": NO_SUCH_PID})
    (folder / "snapshots" / TEMP).mkdir()
    (folder / "snapshots" / TEMP / "model.safetensors").write_bytes(b"half")
    (folder / ".report.json.x1y2z3w4.tmp").write_text("{")
    (folder / "snapshots" / ".DS_Store").write_text("not ours")          # hidden, but no temporary name
    return folder


def runs_folder(root: Path) -> Path:
    """Four runs: finished, killed while writing (debris), failed (newest), unreadable (oldest); a hidden folder."""
    write_run(root / "a-old", "finished", mtime=1_000_000)
    killed_while_writing(root / "c-killed")
    os.utime(root / "c-killed" / "report.json", (2_000_000, 2_000_000))
    write_run(root / "b-new", "failed", mtime=3_000_000)
    (root / "d-unreadable").mkdir()
    (root / "d-unreadable" / "report.json").write_text("[1, 2]")
    os.utime(root / "d-unreadable" / "report.json", (500_000, 500_000))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "report.json").write_text("{}")
    return root
