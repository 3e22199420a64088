"""Faults during runs: a killed run keeps every complete snapshot and reads as interrupted; nothing under a
final name is ever half-written; the child run process reports crashes, deaths and bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import ROOT, run_cli
from waits import wait_for

from workbench.core.errors import BadInput, WorkbenchError
from workbench.core.events import RunFinished, SnapshotSaved
from workbench.core.recipe import Recipe, new_stage
from workbench.core.run_folder import list_runs, read_run
from workbench.core.run_handle import RunOptions
from workbench.core.snapshots import load_snapshot

RECIPE = """model: arch:mlp:hidden=64
data: sample:digits
stages:
  - kind: train
    epochs: 2
  - kind: prune
    sparsity: 0.5
    finetune_epochs: 1
  - kind: quantize
    method: kmeans
    bits: 5
  - kind: export
    formats: [safetensors, packed, onnx]
"""


# the same, with a long last training stage: a run that cannot end between two polls of the test
LONG_RECIPE = RECIPE.replace("  - kind: export", "  - kind: train\n    epochs: 500\n  - kind: export")


def start_run(tmp_path: Path, out: Path, text: str = RECIPE) -> subprocess.Popen:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    return subprocess.Popen([sys.executable, "-m", "workbench", "run", str(recipe), "--out", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def assert_everything_final_is_complete(out: Path) -> None:
    """Every file and folder under its final name is whole: report.json parses, snapshots load, exports verify."""
    report = json.loads((out / "report.json").read_text())
    assert report["status"] in ("running", "finished")
    folders = sorted(p for p in (out / "snapshots").iterdir() if not p.name.startswith(".")) \
        if (out / "snapshots").exists() else []
    assert len(folders) >= len(report["snapshots"])       # report rows lag the folders, never lead them
    for folder in folders:
        loaded = load_snapshot(folder)
        meta = json.loads((folder / "snapshot.json").read_text())
        assert meta["metrics"]["params"] > 0 and loaded.module is not None
        compressed = list(folder.glob("compressed.*"))
        assert len(compressed) == 1 and compressed[0].stat().st_size == meta["metrics"]["compressed_bytes"]
    for line in (out / "metrics.jsonl").read_text().splitlines()[:-1] if (out / "metrics.jsonl").exists() else []:
        json.loads(line)                                   # only the very last line may be cut short
    exports = out / "exports"
    for f in exports.iterdir() if exports.exists() else []:
        assert not f.name.startswith(".") or f.suffix == ".tmp"
        if not f.name.startswith("."):
            assert f.stat().st_size > 0


def test_killed_run_reads_as_interrupted_and_keeps_its_snapshots(tmp_path):
    out = tmp_path / "run"
    proc = start_run(tmp_path, out, LONG_RECIPE)
    try:
        wait_for(lambda: _report_rows(out) >= 2, "a second snapshot")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((out / "report.json").read_text())["status"] == "running"   # as the killed process left it
    run = read_run(out)
    assert run.status == "interrupted"
    assert_everything_final_is_complete(out)
    listed = run_cli("runs", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["status"] == "interrupted" and len(rows[0]["snapshots"]) >= 2
    assert [d["path"] for d in rows[0]["debris"]] == [d.path for d in run.debris]
    assert "[interrupted]" in run_cli("runs", str(tmp_path)).stdout


def _snapshots_being_written(out: Path) -> bool:
    folder = out / "snapshots"
    return folder.is_dir() and any(p.name.startswith(".") for p in folder.iterdir())


def _report_rows(out: Path) -> int:
    try:
        return len(json.loads((out / "report.json").read_text())["snapshots"])
    except (OSError, ValueError, KeyError):
        return 0


# moments in a run, recognised by what is on disk (never by the clock): the run is killed as soon as it gets there
KILL_MOMENTS = {
    "report.json just written": lambda out: (out / "report.json").exists(),
    "a snapshot folder being written": _snapshots_being_written,
    "after the second snapshot": lambda out: _report_rows(out) >= 2,
    "the exports folder made": lambda out: (out / "exports").exists(),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(KILL_MOMENTS))
def test_kill_at_any_moment_never_leaves_a_half_written_file(tmp_path, moment):
    out = tmp_path / "run"
    proc = start_run(tmp_path, out)
    reached = KILL_MOMENTS[moment]
    try:
        wait_for(lambda: reached(out) or proc.poll() is not None, f"the run to reach '{moment}'")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if (out / "report.json").exists():
        assert_everything_final_is_complete(out)
    runs = list_runs(tmp_path)
    assert all(r.status in ("interrupted", "finished") for r in runs)
    # a snapshot folder cut short is listed as debris, never as a snapshot, and left where it is
    left = sorted(f"snapshots/{p.name}" for p in (out / "snapshots").glob(".*")) if (out / "snapshots").exists() else []
    for run in runs:
        assert sorted(d.path for d in run.debris if d.path.startswith("snapshots/")) == left
        assert not any(Path(s["path"]).name.startswith(".") for s in run.snapshots)
    assert all((out / path).exists() for path in left)


def test_out_that_cannot_be_written_is_refused_before_the_run(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    cases = [a_file, a_file / "below", Path("/proc/workbench-run")]
    if os.geteuid() != 0:            # root writes anywhere
        cases.append(read_only / "run")
    for out in cases:
        proc = run_cli("run", str(recipe), "--out", str(out))
        assert proc.returncode == 2, (out, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(out) in lines[0] and "Traceback" not in proc.stderr


# --- the child run process (what the GUI uses) ---------------------------------------------------------

def _child(recipe: Recipe, tmp_path: Path, **kw):
    from workbench.core.child_run import ChildRun
    return ChildRun(recipe, RunOptions(model="arch:mlp:hidden=16", data="sample:digits", out_dir=str(tmp_path / "run"), **kw))


def test_child_run_streams_the_same_events(tmp_path):
    events = list(_child(Recipe([new_stage("train", epochs=1)]), tmp_path).events())
    assert [e.stage for e in events if isinstance(e, SnapshotSaved)] == ["baseline", "train"]
    assert isinstance(events[-1], RunFinished) and events[-1].ok
    assert read_run(tmp_path / "run").status == "finished"


def test_child_run_bad_input_is_raised_before_any_event(tmp_path):
    run = _child(Recipe([new_stage("train", epochs=1)]), tmp_path, seed=None, device="tpu")
    with pytest.raises(BadInput, match="--device"):
        next(iter(run.events()))


def test_child_run_that_is_killed_ends_with_an_error_and_an_interrupted_folder(tmp_path):
    run = _child(Recipe([new_stage("train", epochs=200)]), tmp_path)
    events = run.events()
    with pytest.raises(WorkbenchError, match="ended unexpectedly"):
        for event in events:
            if isinstance(event, SnapshotSaved):          # the baseline is on disk: now the process dies
                os.kill(run.pid, signal.SIGKILL)
    assert read_run(tmp_path / "run").status == "interrupted"
    assert load_snapshot(tmp_path / "run" / "snapshots" / "00-baseline").module is not None
