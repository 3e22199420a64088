"""Background runs from the real window: snapshots, plots, stop, failures, export, compare, closing."""
import dataclasses
import json
import threading
from pathlib import Path

from waits import WAIT_MS

from workbench.core import stages
from workbench.core.events import Progress, StageFailed
from workbench.core.stages import train as train_stage

from .helpers import wait_run

LONG = [{"kind": "train", "epochs": 500}, {"kind": "export", "formats": ["safetensors"]}]


def test_short_run_fills_snapshots_plots_and_runs_view(make_window, qtbot, messages):
    w = make_window(stages=[{"kind": "train", "epochs": 1}, {"kind": "prune", "sparsity": 0.5, "finetune_epochs": 0},
                            {"kind": "export", "formats": ["safetensors"]}])
    assert w.start_run()
    assert not w.acts["run"].isEnabled() and w.acts["stop"].isEnabled()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    report = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert report["status"] == "finished" and len(report["snapshots"]) == 3
    assert report["exports"][0]["verified"]
    # runs view: one run, three snapshots with their numbers
    assert len(w.runs.snapshots) == 3
    pruned = [r for r in w.runs.snapshots.values() if r["stage"] == "prune"][0]
    assert pruned["nonzero_params"] < pruned["params"]
    # plots received data (and redraw at most every 50 ms)
    qtbot.waitUntil(lambda: not w.plots._dirty, timeout=WAIT_MS)
    assert "train/loss" in w.plots.metrics and "train/accuracy" in w.plots.metrics
    assert len(w.plots.points) == 3 and w.plots.scatter.points().size == 3
    assert w.run_panel.overall_bar.value() == w.run_panel.overall_bar.maximum()
    assert w.acts["run"].isEnabled() and not w.acts["stop"].isEnabled()
    # the inspector follows the selected snapshot: the pruned layer shows its zero spike
    w.runs.select(pruned["path"])
    w.browser.select_layer("fc1")
    qtbot.waitUntil(lambda: w.inspector.arrays is not None and "prune" in w.inspector.title.text()
                    and w.inspector.arrays.name == "fc1", timeout=WAIT_MS)
    # ... and so does the model browser: the tree shows the snapshot's non-zeros
    qtbot.waitUntil(lambda: w.browser.info["total"]["nonzero_params"] == pruned["nonzero_params"], timeout=WAIT_MS)
    assert "prune" in w.browser.totals.text()
    # ... and the Layers tab (what a run's end reselects may come first on a loaded machine: the selection decides)
    assert set(w.plots.sparsity) == {"fc1", "fc2", "fc3"} and max(w.plots.sparsity.values()) > 0.3
    arrays = w.inspector.arrays
    assert arrays.mask_kept is not None and arrays.heat_pruned.any()
    assert arrays.zeros / (arrays.zeros + arrays.hist_counts.sum()) > 0.3
    # a click on a scatter point selects that snapshot
    baseline = [p for p, r in w.runs.snapshots.items() if r["stage"] == "baseline"][0]
    w.plots.snapshotClicked.emit(baseline)
    assert w.runs.selected_paths() == [baseline]
    # compare two snapshots side by side
    dialog = w.compare(baseline, pruned["path"])
    assert dialog.layers_table.rowCount() == 3
    # export plots
    paths = w.plots.export_all(str(Path(w.control.out_dir) / "plots"))
    assert all(Path(p).stat().st_size > 1000 for p in paths)


def test_export_dialog_verifies(make_window, qtbot, tmp_path):
    w = make_window()
    w.start_run()
    wait_run(qtbot, w)
    snap = sorted(w.runs.snapshots)[-1]
    w.runs.select(snap)
    dialog = w.export_dialog()
    assert dialog.list.count() >= 3
    dialog.select_format("state_dict")
    dialog.path.setText(str(tmp_path / "out.pt"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.exported is not None or dialog.error is not None, timeout=WAIT_MS)
    assert dialog.exported.verified and "verified" in dialog.status.text()
    assert (tmp_path / "out.pt").stat().st_size == dialog.exported.bytes
    dialog.close()


def test_a_second_run_and_an_export_while_a_run_writes_snapshots(make_window, qtbot, tmp_path, messages):
    w = make_window(stages=LONG)
    assert w.start_run()
    qtbot.waitUntil(lambda: len(w.runs.snapshots) == 1, timeout=WAIT_MS)   # the baseline is written
    assert not w.start_run() and not w.acts["run"].isEnabled()          # one run at a time
    baseline = next(iter(w.runs.snapshots))
    w.runs.select(baseline)
    dialog = w.export_dialog()
    dialog.select_format("safetensors")
    dialog.path.setText(str(tmp_path / "while_running.safetensors"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.exported is not None or dialog.error is not None, timeout=WAIT_MS)
    assert dialog.exported.verified and w.control.running()
    dialog.close()
    w.stop_run()
    wait_run(qtbot, w)
    assert not messages


def test_one_export_plots_action_for_the_menu_and_the_plots_panel(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    w = make_window()
    assert w.plots.export_button.defaultAction() is w.acts["export_plots"]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "pngs"))
    w.plots.export_button.click()
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == sorted(f"{n}.png" for n in w.plots.widgets())
    assert "PNG files" in w.statusBar().currentMessage()


def test_stop_keeps_the_previous_snapshot(make_window, qtbot, messages):
    w = make_window(stages=LONG)
    w.control.KILL_AFTER_MS = WAIT_MS                 # however busy the machine, the stage ends by itself first
    ended = []
    w.control.listeners.append(lambda ev: isinstance(ev, StageFailed) and ended.append(ev))
    w.start_run()
    qtbot.waitUntil(lambda: w.run_panel.stage_bar.value() > 0 and w.run_panel.started == 1, timeout=WAIT_MS)
    w.stop_run()
    wait_run(qtbot, w)
    assert ended and ended[0].cancelled and not w.control.killed    # the stage itself ended at its next event
    report = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert report["status"] == "cancelled" and len(report["snapshots"]) == 1
    assert [r["stage"] for r in w.runs.snapshots.values()] == ["baseline"]
    assert w.control.last_failure.cancelled and not messages   # stopping is not an error
    assert "stopped" in w.runs.runs[str(Path(w.control.out_dir).resolve())].text(0)
    assert w.acts["run"].isEnabled()


def test_stop_kills_a_stage_that_does_not_end(make_window, qtbot, messages):
    from workbench.core.run_folder import read_run
    from workbench.core.snapshots import load_snapshot
    w = make_window(stages=LONG)
    w.control.KILL_AFTER_MS = 300
    w.start_run()
    qtbot.waitUntil(lambda: w.run_panel.stage_bar.value() > 0 and w.run_panel.started == 1, timeout=WAIT_MS)
    w.control.worker.cancel = lambda: None          # a stage stuck where it cannot see the cancel flag
    handle, killers = w.control.worker.run, []
    real_kill = handle.kill
    handle.kill = lambda: (killers.append(threading.current_thread()), real_kill())
    w.stop_run()
    wait_run(qtbot, w)
    assert w.control.killed and not messages          # the user asked to stop: no error dialog
    assert killers and threading.main_thread() not in killers      # the GUI thread never waits for the process
    run = read_run(w.control.out_dir)
    assert run.status == "cancelled" and "killed" in run.report["message"]
    assert load_snapshot(Path(w.control.out_dir) / "snapshots" / "00-baseline").module is not None
    assert "stopped" in w.runs.runs[str(Path(w.control.out_dir).resolve())].text(0)
    assert w.start_run()                              # the window can run again
    w.stop_run()
    wait_run(qtbot, w)


def test_failing_stage_shows_readable_error(make_window, qtbot, messages, monkeypatch):
    def boom(session, params):
        yield Progress(1, 10, "training")
        raise RuntimeError("simulated failure in the stage")
    monkeypatch.setitem(stages._REGISTERED, "train", dataclasses.replace(train_stage.STAGE, run=boom))
    w = make_window()
    w.control.in_process = True   # the patch lives in this process: run the stages on a thread here
    w.start_run()
    wait_run(qtbot, w)
    title, text, details = messages[-1]
    assert title == "Stage failed" and "simulated failure" in text and "Traceback" in details
    assert w.acts["run"].isEnabled()
    # the window stays usable: another run starts (the stage as registered again; the message boxes stay recorded)
    monkeypatch.setitem(stages._REGISTERED, "train", train_stage.STAGE)
    assert w.start_run()
    wait_run(qtbot, w)


def test_an_impossible_order_is_refused_before_the_child_process_runs(make_window, qtbot, messages):
    w = make_window(stages=[{"kind": "quantize", "method": "int8_dynamic"}, {"kind": "export", "formats": ["onnx"]}])
    w.start_run()
    wait_run(qtbot, w)
    title, text, details = messages[-1]
    assert title == "Cannot run" and "cannot follow" in text and "onnx_int8" in text
    assert w.control.last_failure is None                       # refused by the preflight: no stage ran


def test_bad_input_before_the_run_is_a_message(make_window, qtbot, messages):
    w = make_window()
    w.data_spec = "sample:nope"
    w.start_run()
    wait_run(qtbot, w)
    assert "Cannot run" in messages.texts() and "unknown sample data" in messages.texts()


def test_closing_during_a_run_asks_and_stops_cleanly(make_window, qtbot, messages):
    w = make_window(stages=LONG)
    w.start_run()
    qtbot.waitUntil(lambda: w.run_panel.started == 1, timeout=WAIT_MS)
    messages.answer = messages.answer.No
    w.close()
    assert w.isVisible() and w.control.running()   # "No": keep running
    messages.answer = messages.answer.Yes
    w.close()                                      # stops the run; the window closes itself once it has ended
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT_MS)
    assert not w.control.running()
    out = Path(w.control.out_dir)
    assert json.loads((out / "report.json").read_text())["status"] == "cancelled"
    leftovers = [p.name for p in out.rglob(".*")]
    assert not leftovers, leftovers   # no half-written temporary files or folders


def test_layout_and_recent_files_are_remembered(make_window, qtbot, tmp_path):
    from workbench.ui import settings
    w = make_window()
    w.docks["runs"].hide()
    w.close()
    assert "sample:digits_mlp" in settings.recent("models")
    w2 = make_window()
    assert not w2.docks["runs"].isVisible()
    assert w2.menus["recent_models"].actions()[0].text() == "sample:digits_mlp"


def test_sensitivity_curves_reach_the_analysis_plot(make_window, qtbot, messages):
    w = make_window(stages=[{"kind": "sensitivity", "sparsities": [0.5, 0.9]}])
    w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    qtbot.waitUntil(lambda: not w.plots._dirty, timeout=WAIT_MS)
    curves = w.plots.series[("sparsity", "accuracy")]
    assert set(curves) == {"sensitivity/fc1", "sensitivity/fc2", "sensitivity/fc3"}
    assert len(w.plots.analysis.plots) == 1 and not w.plots.analysis.empty.isVisible()
    # fork: the last snapshot becomes the current model
    snapshot = sorted(w.runs.snapshots)[-1]
    w.runs.select(snapshot)
    w.runs.buttons["Fork"].click()
    qtbot.waitUntil(lambda: w.model_spec == snapshot, timeout=WAIT_MS)


def test_new_student_and_early_exit_curves_in_the_window(make_window, qtbot, messages):
    w = make_window(stages=[
        {"kind": "distill", "teacher": "sample:digits_teacher", "student": "arch:mlp:hidden=32", "epochs": 1},
        {"kind": "dynamic", "exits": ["fc1"], "thresholds": [0.5, 0.9], "epochs": 1, "latency_samples": 5}])
    w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    qtbot.waitUntil(lambda: not w.plots._dirty, timeout=WAIT_MS)
    curve = w.plots.series[("expected MFLOPs per sample (exit shares x measured per-exit FLOPs)", "accuracy")]["early_exit/accuracy"]
    assert len(curve[0]) == 2 and all(0 <= a <= 1 for a in curve[1])
    assert "distill/loss" in w.plots.metrics
    # the distilled student (another architecture) shows in the browser when its snapshot is selected
    snapshot = next(p for p in sorted(w.runs.snapshots) if p.endswith("01-distill"))
    w.runs.select(snapshot)
    qtbot.waitUntil(lambda: w.browser.info is not None and w.browser.info.get("total", {}).get("params") == 2410,
                    timeout=WAIT_MS)


def test_unexpected_errors_become_a_dialog(make_window, messages):
    from workbench.ui.dialogs import errors
    make_window()
    try:
        raise ValueError("something odd")
    except ValueError as exc:
        errors._excepthook(type(exc), exc, exc.__traceback__)
    title, text, details = messages[-1]
    assert title == "Unexpected error" and "something odd" in text and "Traceback" in details
