"""Run from here: after Stop, Run offers to continue from the stopped run's last snapshot (or Start over); the new
run starts at the stage after the snapshot's, with the snapshot as its model, and says so in report.json."""
import json
from pathlib import Path

from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS

from workbench.core.errors import BadInput
from workbench.core.resume import resume_plan

from .helpers import wait_run

STAGES = [{"kind": "prune", "method": "magnitude", "sparsity": 0.5, "finetune_epochs": 0},
          {"kind": "train", "epochs": 500}, {"kind": "export", "formats": ["safetensors"]}]


def test_stop_then_run_from_the_last_snapshot(make_window, qtbot, messages):
    w = make_window(stages=STAGES)
    w.control.KILL_AFTER_MS = WAIT_MS
    assert w.start_run()
    first = w.control.out_dir
    qtbot.waitUntil(lambda: any(r["stage"] == "prune" for r in w.runs.snapshots.values()), timeout=WAIT_MS)
    w.stop_run()                                     # during the long training stage
    wait_run(qtbot, w)
    pruned = str(Path(first) / "snapshots" / "01-prune")
    assert json.loads((Path(first) / "report.json").read_text())["status"] == "cancelled"
    messages.answer = QMessageBox.StandardButton.Yes        # "Run from snapshot 1"
    w.control.listeners.append(lambda ev: type(ev).__name__ == "StageStarted" and started.append(ev.kind))
    started: list[str] = []
    assert w.start_run()
    title, text, _ = messages[-1]
    assert title == "Run from a snapshot?" and "snapshot 1 (prune)" in text and "train, export" in text
    second = w.control.out_dir
    assert second != first
    qtbot.waitUntil(lambda: bool(started), timeout=WAIT_MS)
    w.stop_run()
    wait_run(qtbot, w)
    report = json.loads((Path(second) / "report.json").read_text())
    assert report["resumed_from"] == {"run": str(Path(first)), "snapshot": pruned}
    assert started[0] == "train" and [s["kind"] for s in report["recipe"]["stages"]] == ["train", "export"]
    assert report["model"] == pruned and report["snapshots"][0]["sparsity"] > 0.4   # the pruned model, carried on
    messages.answer = QMessageBox.StandardButton.No          # "Start over": the whole recipe on the open model
    assert w.start_run()
    assert messages[-1][0] == "Run from a snapshot?" and w.control.out_dir not in (first, second)
    w.stop_run()
    wait_run(qtbot, w)
    third = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert "resumed_from" not in third and third["model"] == "sample:digits_mlp"


def test_nothing_to_run_after_the_last_stage(tmp_path):
    run = tmp_path / "run"
    (run / "snapshots" / "01-x").mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"recipe": {"stages": [{"kind": "train"}]}}))
    try:
        resume_plan(run / "snapshots" / "01-x")
    except BadInput as exc:
        assert "not a snapshot folder" in exc.message
    else:
        raise AssertionError("a folder without snapshot.json was taken for a snapshot")
