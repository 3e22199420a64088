"""Scale-out: the same recipe on two CPU processes under torchrun (gloo) gives the single-process result."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cli_helpers import ROOT
from waits import WAIT_S

from workbench.core.run_handle import RunOptions

RECIPE = """model: sample:digits_mlp
data: sample:digits
stages:
  - {kind: prune, sparsity: 0.8, schedule: iterative, steps: 2, finetune_epochs: 1}
  - {kind: distill, teacher: input, epochs: 1}
"""


def _run(tmp_path, name: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict, list[str]]:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    log = tmp_path / f"{name}.writes"
    env = {**os.environ, "WORKBENCH_WRITE_LOG": str(log), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "run", str(recipe), "--out", str(tmp_path / name), *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=WAIT_S)
    report = json.loads((tmp_path / name / "report.json").read_text()) if (tmp_path / name / "report.json").exists() else {}
    return proc, report, log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    one, single, _ = _run(tmp_path, "one")
    assert one.returncode == 0, one.stderr[-2000:]
    two, multi, writes = _run(tmp_path, "two", "--nproc", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    env = multi["environment"]
    assert env["world_size"] == 2 and env["backend"] == "gloo" and single["environment"]["world_size"] == 1
    assert [s["stage"] for s in multi["snapshots"]] == [s["stage"] for s in single["snapshots"]] == ["baseline", "prune", "distill"]
    for a, b in zip(single["snapshots"], multi["snapshots"]):
        assert a["sparsity"] == b["sparsity"] and a["nonzero_params"] == b["nonzero_params"]
        assert abs(a["accuracy"] - b["accuracy"]) <= 1 / 359 + 1e-9          # within one test sample
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1 / 144 + 1e-9
    assert multi["status"] == "finished" and multi["snapshots"][1]["sparsity"] == 0.8
    ranks = {line.split()[0] for line in writes}
    assert writes and ranks == {"0"}, writes[:5]                              # rank 1 wrote nothing
    assert two.stdout.count("report:") == 1                                  # one report, printed once
    assert two.stderr.count("[1/2 prune] started") == 1                      # progress shown once


def _pids_with(marker: str, rank: str) -> list[int]:
    """Processes whose environment holds `marker` (this test's own) and RANK=rank."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                env = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            except OSError:
                continue
            if marker.encode() in env and f"RANK={rank}".encode() in env:
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_run_with_a_clear_status(tmp_path):
    import signal
    import time

    from workbench.core.run_folder import read_run
    from workbench.core.snapshots import load_snapshot
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("epochs: 1}", "epochs: 50}"))
    marker = f"WORKBENCH_WRITE_LOG={tmp_path / 'writes'}"
    env = {**os.environ, "WORKBENCH_WRITE_LOG": str(tmp_path / "writes"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "run", str(recipe), "--out", str(out), "--nproc", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / "snapshots" / "00-baseline").exists():
        time.sleep(0.5)
    victims = _pids_with(marker, "1")
    assert victims, "rank 1 not found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1
    run = read_run(out)
    assert run.status == "failed" and "died" in run.report["message"], run.report.get("message")
    assert "a process of the distributed run died" in stderr
    assert load_snapshot(out / "snapshots" / "00-baseline").module is not None


def test_events_round_trip_through_json():
    from workbench.core import events as E
    samples = [E.Progress(1, 2, "x"), E.Metric("train/loss", 0.5, 1.25), E.LayerStats({"fc1": {"sparsity": 0.5}}),
               E.Series("s", (0.1, 0.2), (0.9, 0.8), "a", "b"), E.Log("info", "hi"), E.StageStarted(0, "prune", 2),
               E.SnapshotSaved(1, "prune", "/p", {"accuracy": 0.9}), E.StageFailed(1, "prune", "m", "d", True),
               E.ExportWritten(E.ExportResult("onnx", "/m.onnx", 10, True, 0.0, None, {}, "exact")),
               E.RunFinished("/o", "/o/report.json", True, "finished")]
    for event in samples:
        assert E.from_json(json.loads(json.dumps(E.to_json(event)))) == event


@pytest.mark.slow
def test_a_command_run_is_followed_like_a_child_run(tmp_path):
    """What the GUI does for a local multi-process run: start `workbench run --nproc 2` and read its events."""
    from workbench.core.command_run import CommandRun
    from workbench.core.events import RunFinished, SnapshotSaved
    from workbench.core.recipe import Recipe
    recipe = Recipe.from_text("model: sample:digits_mlp\ndata: sample:digits\nstages: [{kind: train, epochs: 1}]\n")
    events = list(CommandRun(recipe, RunOptions(nproc=2, out_dir=str(tmp_path / "run"), device="cpu")).events())
    assert [e.stage for e in events if isinstance(e, SnapshotSaved)] == ["baseline", "train"]
    assert isinstance(events[-1], RunFinished) and events[-1].ok
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["environment"]["world_size"] == 2


def _alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie waiting for its parent counts as ended)."""
    alive = []
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.mark.slow
def test_a_killed_multi_process_run_leaves_no_process(tmp_path, monkeypatch):
    """torchrun starts each rank in a session of its own: killing the launcher's process group left the ranks
    training on. Kill reaches every process the run started."""
    import time

    from workbench.core.command_run import CommandRun
    from workbench.core.events import SnapshotSaved
    from workbench.core.recipe import Recipe
    marker = f"WORKBENCH_TEST_MARK={tmp_path}"
    monkeypatch.setenv("WORKBENCH_TEST_MARK", str(tmp_path))
    recipe = Recipe.from_text(RECIPE.replace("epochs: 1}", "epochs: 50}"))
    run = CommandRun(recipe, RunOptions(nproc=2, out_dir=str(tmp_path / "run"), device="cpu"))
    events = run.events()
    for event in events:
        if isinstance(event, SnapshotSaved):
            break
    ranks = _pids_with(marker, "0") + _pids_with(marker, "1")
    assert len(ranks) == 2, ranks
    run.kill()
    events.close()
    deadline = time.monotonic() + WAIT_S
    while _alive(ranks) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(ranks)
    assert (tmp_path / "run" / "snapshots" / "00-baseline" / "snapshot.json").exists()   # the complete one stays


def test_a_process_whose_parent_dies_ends(tmp_path):
    """A rank whose torchrun was killed (nobody left to stop it) ends itself."""
    import time
    ready = tmp_path / "ready"
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import os, sys, time; from workbench.core.process_tree import "
            "die_with_parent; die_with_parent(0.05); open(sys.argv[1], \"w\").write(str(os.getpid())); time.sleep(600)', "
            "sys.argv[1]])\n"
            "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code, str(ready)], cwd=ROOT)
    deadline = time.monotonic() + WAIT_S
    while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphan = int(ready.read_text())                  # written once its parent is being watched
    assert _alive([orphan])
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + WAIT_S
    while _alive([orphan]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive([orphan])


def test_kill_tree_reaches_a_child_in_a_session_of_its_own(tmp_path):
    """What torchrun does with its ranks: a signal to the parent's process group would miss this child."""
    import signal
    import time

    from workbench.core.process_tree import descendants, kill_tree
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(parent.stdout.readline())
    assert descendants(parent.pid) == [child]
    kill_tree(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + WAIT_S
    while _alive([child]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive([child])
