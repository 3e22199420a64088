"""The one run-folder API (`core/run_folder.py`): liveness by pid and process start time, debris left by a run
killed while writing a snapshot (listed, never shown as a snapshot, never deleted), and `workbench runs` (text and
--json) giving the same answer in the same order (newest first)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from run_folder_helpers import NO_SUCH_PID, TEMP, killed_while_writing, runs_folder, write_run

from workbench import cli
from workbench.core import run_folder
from workbench.core.run_folder import Debris, RunReport, list_runs, process_record, process_start, read_run


def status_with(tmp_path: Path, process: dict) -> str:
    return read_run(write_run(tmp_path / "run", "running", process)).status


# --- liveness ---------------------------------------------------------------------------------------------

def test_the_report_records_the_writers_start_time(tmp_path):
    report = RunReport(tmp_path, {"model": "m"}, "cpu")
    report.write()
    process = json.loads((tmp_path / "report.json").read_text())["process"]
    assert process["pid"] == os.getpid() and process == process_record()
    if Path("/proc/self/stat").exists():
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])    # field 22
        assert process["clock"] == "proc" and process["start_time"] == ticks
        assert process["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert read_run(tmp_path).status == "running"          # this process wrote it and is alive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times from /proc (Linux)")
def test_a_reused_pid_with_another_start_time_reads_as_interrupted(tmp_path):
    me = process_record()
    assert status_with(tmp_path, me) == "running"
    reused = {**me, "start_time": me["start_time"] - 1}     # a live pid, but not the process that wrote the run
    assert status_with(tmp_path / "a", reused) == "interrupted"
    rebooted = {**me, "boot_id": "00000000-0000-0000-0000-000000000000"}
    assert status_with(tmp_path / "b", rebooted) == "interrupted"
    assert status_with(tmp_path / "c", {**me, "start_time": "soon"}) == "interrupted"


def test_reports_without_a_start_time_are_judged_by_pid_alone(tmp_path):
    assert status_with(tmp_path / "a", {"pid": os.getpid(), "host": os.uname().nodename}) == "running"
    assert status_with(tmp_path / "b", {"pid": NO_SUCH_PID}) == "interrupted"
    assert status_with(tmp_path / "c", {"pid": True}) == "interrupted"
    assert status_with(tmp_path / "d", {"pid": NO_SUCH_PID, "host": "another-machine"}) == "running"   # cannot tell


def test_without_proc_the_start_time_comes_from_psutil(tmp_path, monkeypatch):
    """Elsewhere than Linux: psutil's creation time where it is importable, else the pid only."""
    monkeypatch.setattr(run_folder, "_stat_start", lambda pid: None)
    monkeypatch.setattr(run_folder, "_psutil_start", lambda pid: 1700000000.25 if pid == os.getpid() else None)
    me = process_record()
    assert me["clock"] == "psutil" and me["start_time"] == 1700000000.25 and "boot_id" not in me
    assert status_with(tmp_path / "a", me) == "running"
    assert status_with(tmp_path / "b", {**me, "start_time": 1600000000.0}) == "interrupted"
    monkeypatch.setattr(run_folder, "_psutil_start", lambda pid: None)
    assert process_start(os.getpid()) == {}
    assert status_with(tmp_path / "c", {"pid": os.getpid(), "start_time": 1.0, "clock": "psutil"}) == "running"


# --- debris -----------------------------------------------------------------------------------------------

def test_debris_is_listed_never_a_snapshot_and_never_deleted(tmp_path):
    run = read_run(killed_while_writing(tmp_path / "run"))
    assert run.status == "interrupted" and run.problem is None and run.name == "run"
    assert [Path(s["path"]) for s in run.snapshots] == [tmp_path / "run" / "snapshots" / "00-baseline"]
    assert run.debris == (Debris(".report.json.x1y2z3w4.tmp", "a file cut short while being written"),
                          Debris(f"snapshots/{TEMP}", "a snapshot cut short while being written"))
    assert (tmp_path / "run" / "snapshots" / TEMP / "model.safetensors").read_bytes() == b"half"
    with pytest.raises(AttributeError):
        run.status = "finished"                              # frozen: every reader gets the same answer


def test_a_live_runs_temporary_folder_is_not_debris(tmp_path):
    folder = killed_while_writing(tmp_path / "run")
    report = json.loads((folder / "report.json").read_text())
    (folder / "report.json").write_text(json.dumps({**report, "process": process_record()}))
    run = read_run(folder)
    assert run.status == "running" and run.debris == () and len(run.snapshots) == 1


def test_debris_behind_a_link_is_not_looked_at(tmp_path):
    outside = tmp_path / "outside"
    (outside / TEMP).mkdir(parents=True)
    folder = write_run(tmp_path / "run", snapshots=())
    (folder / "snapshots").symlink_to(outside)
    assert read_run(folder).debris == ()
    (folder / "snapshots").unlink()
    outside.rename(folder / "snapshots")                     # the same folder, in place: its debris is listed
    assert [d.path for d in read_run(folder).debris] == [f"snapshots/{TEMP}"]


# --- one answer for every reader ------------------------------------------------------------------------

@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return runs_folder(tmp_path / "runs")


def test_list_runs_is_newest_first_with_problems_and_debris(runs_dir):
    runs = list_runs(runs_dir)
    assert [(r.name, r.status) for r in runs] == [("b-new", "failed"), ("c-killed", "interrupted"),
                                                  ("a-old", "finished"), ("d-unreadable", "unknown")]
    assert runs[3].problem == "report.json is not a JSON object" and runs[3].snapshots == ()
    assert [len(r.debris) for r in runs] == [0, 2, 0, 0]
    assert list_runs(runs_dir / "missing") == []


def test_workbench_runs_lists_debris_one_line_each(runs_dir, capsys):
    assert cli.main(["runs", str(runs_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    heads = [line.split("  ")[0] for line in lines if line and not line.startswith(" ")]
    assert heads == ["b-new", "c-killed", "a-old", "d-unreadable"]
    killed = lines[lines.index(next(line for line in lines if line.startswith("c-killed"))):]
    assert killed[0].startswith("c-killed  [interrupted]")
    assert killed[1:3] == ["  debris: .report.json.x1y2z3w4.tmp (a file cut short while being written)",
                           f"  debris: snapshots/{TEMP} (a snapshot cut short while being written)"]
    assert sum("debris:" in line for line in lines) == 2 and TEMP not in killed[3] + killed[4]


def test_workbench_runs_json_has_the_same_answer(runs_dir, capsys):
    assert cli.main(["runs", str(runs_dir), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    runs = list_runs(runs_dir)
    assert [(r["name"], r["status"], r["error"]) for r in listed] == [(r.name, r.status, r.problem) for r in runs]
    killed = listed[1]
    assert killed["debris"] == [{"path": ".report.json.x1y2z3w4.tmp", "what": "a file cut short while being written"},
                                {"path": f"snapshots/{TEMP}", "what": "a snapshot cut short while being written"}]
    assert [Path(s["path"]).name for s in killed["snapshots"]] == ["00-baseline"]
    assert all(r["debris"] == [] for r in listed if r["name"] != "c-killed")
