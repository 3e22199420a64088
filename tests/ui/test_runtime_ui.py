"""The deploy runtime in the GUI (issue 19): the choice next to the device (a runtime missing here greyed with the
core's reason; the choice is the recipe's `runtime:`, saved and loaded), the runs table's latency with its spread on
eager and on the runtime ("noisy" and "—" where a number would pretend), int8 agreement, and Compare."""
import json
from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt
from waits import WAIT_MS

from workbench.core import runtimes
from workbench.core.latency import LATENCY_THREADS
from workbench.core.runtimes import Runtime
from workbench.ui.dialogs.compare import latency_rows
from workbench.ui.widgets.runs_columns import AGREEMENT_COL, LATENCY_COL, RUNTIME_COL, snapshot_cells
from workbench.ui.widgets.runs_view import PATH_ROLE, RunsView

from .helpers import wait_run, write_recipe

REASON = "openvino is not installed here (pip install 'workbench[openvino]')"
FIG = {"median_ms": 1.234, "p10_ms": 1.1, "p90_ms": 1.42, "repeats": 30, "threads": 1, "batch": 1}
NOISY = {"median_ms": 2.0, "p10_ms": 0.9, "p90_ms": 9.5, "repeats": 12, "threads": 1, "batch": 1, "noisy": True}


def shown(fig: dict) -> str:
    """What the table should say for a figure: median (p10–p90), in µs below 1 ms."""
    scale, unit = (1000, "µs") if fig["median_ms"] < 1 else (1, "ms")
    return f"{fig['median_ms'] * scale:.3g} {unit} ({fig['p10_ms'] * scale:.3g}–{fig['p90_ms'] * scale:.3g})"


def cell(fig: dict) -> str:
    return "noisy" if fig.get("noisy") else shown(fig)


def combo_item(combo, name):
    return combo.model().item(combo.findText(name))


def test_a_missing_runtime_is_greyed_with_its_reason_and_the_choice_is_the_recipes(make_window, monkeypatch, tmp_path):
    real = Runtime.missing
    monkeypatch.setattr(Runtime, "missing", lambda self: REASON if self.name == "openvino" else real(self))
    w = make_window()
    combo = w.runtime_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["eager", "compile", "onnxruntime", "openvino", "tensorrt"]
    assert combo.currentText() == "eager" and "runtime" not in w.doc.to_dict()
    assert not combo_item(combo, "openvino").isEnabled() and combo_item(combo, "onnxruntime").isEnabled()
    assert REASON in combo.itemData(combo.findText("openvino"), Qt.ItemDataRole.ToolTipRole)
    assert "Not usable" not in combo.itemData(combo.findText("onnxruntime"), Qt.ItemDataRole.ToolTipRole)

    combo.setCurrentIndex(combo.findText("onnxruntime"))
    combo.activated.emit(combo.findText("onnxruntime"))          # as a user's pick
    assert w.doc.to_dict()["runtime"] == "onnxruntime" and w.checked_recipe().runtime == "onnxruntime"
    saved = tmp_path / "saved.yaml"
    w._save_to(str(saved))
    assert yaml.safe_load(saved.read_text())["runtime"] == "onnxruntime"
    w.doc.undo_stack.undo()                                        # one undo step: back to eager, the combo follows
    assert combo.currentText() == "eager" and "runtime" not in w.doc.to_dict()

    other = write_recipe(tmp_path / "compile.yaml", [{"kind": "train", "epochs": 1}])
    raw = yaml.safe_load(Path(other).read_text())
    Path(other).write_text(yaml.safe_dump({**raw, "runtime": "openvino"}, sort_keys=False))
    assert w.open_recipe(other, quiet=True)                        # a recipe naming a runtime missing here: shown, said
    assert combo.currentText() == "openvino" and REASON in combo.toolTip()
    assert combo.refusal() == f"runtime openvino: cannot be used here: {REASON}"
    combo.setCurrentIndex(0)
    combo.activated.emit(0)                                        # eager is written as no runtime: at all
    w._save_to(str(saved))
    assert "runtime" not in yaml.safe_load(saved.read_text())


def test_runs_table_cells_say_median_and_spread_noisy_and_why_not():
    row = {"latency_ms": 2.0, "latency": {"eager": NOISY, "onnxruntime": FIG}, "agreement": 0.984}
    cells = snapshot_cells(row)
    eager, runtime, agreement = (cells[c - 1] for c in (LATENCY_COL, RUNTIME_COL, AGREEMENT_COL))
    assert (eager.text, eager.greyed) == ("noisy", True)
    assert "median 2 ms, p10 0.9 ms, p90 9.5 ms over 12 repeats" in eager.tip and "p90/p10 = 11" in eager.tip
    assert (runtime.text, runtime.greyed) == ("1.23 ms (1.1–1.42)", False)
    assert runtime.tip.startswith("onnxruntime: median 1.234 ms, p10 1.1 ms, p90 1.42 ms over 30 repeats")
    assert agreement.text == "98.4%"
    why = "cannot run on onnxruntime: a torch.ao int8 model cannot be exported to ONNX"
    cells = snapshot_cells({"latency": {"eager": FIG, "onnxruntime": None}, "latency_why": {"onnxruntime": why}})
    assert cells[LATENCY_COL - 1].text == "1.23 ms (1.1–1.42)"
    assert (cells[RUNTIME_COL - 1].text, cells[RUNTIME_COL - 1].tip) == ("—", f"onnxruntime: not measured: {why}")
    assert cells[AGREEMENT_COL - 1].text == ""
    fast = snapshot_cells({"latency": {"eager": {**FIG, "median_ms": 0.0387, "p10_ms": 0.0381, "p90_ms": 0.0464}}})
    assert fast[LATENCY_COL - 1].text == "38.7 µs (38.1–46.4)"                   # below 1 ms: in µs
    old = snapshot_cells({"latency_ms": 0.5})                       # from before latency had its spread
    assert [old[c - 1].text for c in (LATENCY_COL, RUNTIME_COL)] == ["0.5 ms", ""]
    hostile = snapshot_cells({"latency": {"eager": {"median_ms": "1"}, "x" * 5000: FIG}, "agreement": True})
    assert [hostile[c - 1].text for c in (LATENCY_COL, RUNTIME_COL, AGREEMENT_COL)] == ["—", "", ""]


def test_runtime_and_agreement_columns_show_only_with_something_in_them(qtbot, tmp_path):
    view = RunsView()
    qtbot.addWidget(view)
    run = tmp_path / "r1"
    view.add_snapshot(str(run), {"path": str(run / "snapshots" / "00-baseline"), "index": 0, "stage": "baseline",
                                 "latency": {"eager": FIG}, "latency_ms": FIG["median_ms"]})
    assert view.tree.isColumnHidden(RUNTIME_COL) and view.tree.isColumnHidden(AGREEMENT_COL)
    view.add_snapshot(str(run), {"path": str(run / "snapshots" / "01-quantize"), "index": 1, "stage": "quantize",
                                 "latency": {"eager": FIG, "onnxruntime": FIG}, "agreement": 0.5})
    assert not view.tree.isColumnHidden(RUNTIME_COL) and not view.tree.isColumnHidden(AGREEMENT_COL)
    assert view.tree.headerItem().text(RUNTIME_COL) == "onnxruntime latency"
    assert view.runs[str(run.resolve())].text(RUNTIME_COL) == "onnxruntime"
    menu = view.columns.menu(view.tree.header().rect().center())    # the header's menu hides a column
    next(a for a in menu.actions() if a.text() == "Agreement").setChecked(False)
    assert view.tree.isColumnHidden(AGREEMENT_COL) and not view.tree.isColumnHidden(LATENCY_COL)
    menu.close()


def test_compare_shows_both_latencies_with_their_spread():
    why = "exporting to onnxruntime failed: RuntimeError: no"
    totals = {"latency": ({"eager": FIG, "onnxruntime": FIG}, {"eager": NOISY, "onnxruntime": None}),
              "latency_why": (None, {"onnxruntime": why}), "latency_ms": (1.234, 2.0),
              "latency_ratio": (None, {"runtime": "onnxruntime", "value": 0.31, "p10": 0.29, "p90": 0.34, "repeats": 30}),
              "agreement": (None, 0.97)}
    rows = {row[0]: (row, tips) for row, tips in latency_rows(totals)}
    assert rows["latency on eager (batch 1)"][0][1:] == ["1.23 ms (1.1–1.42)", "noisy"]
    assert "p90 9.5 ms" in rows["latency on eager (batch 1)"][1][2]
    assert rows["latency on onnxruntime (batch 1)"][0][1:] == ["1.23 ms (1.1–1.42)", "—"]
    assert why in rows["latency on onnxruntime (batch 1)"][1][2]
    assert rows["latency / its stage input's (A/B/A/B)"][0][1:] == ["", "0.31× (0.29–0.34)"]
    assert rows["int8 agreement with its float input (val)"][0][1:] == ["", "97.0%"]


def test_a_gui_run_on_onnxruntime_shows_the_runtimes_figures_from_report_json(make_window, qtbot, messages, monkeypatch):
    w = make_window(stages=[{"kind": "train", "epochs": 1}])
    w.runtime_combo.activated.emit(w.runtime_combo.findText("onnxruntime"))
    sent = []
    start = w.control.start
    monkeypatch.setattr(w.control, "start", lambda recipe, options, runs_dir: sent.append(options) or start(recipe, options, runs_dir))
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    assert [o.runtime for o in sent] == ["onnxruntime"]
    report = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert report["status"] == "finished", report.get("error")
    assert report["runtime"] == report["recipe"]["runtime"] == "onnxruntime"
    qtbot.waitUntil(lambda: len(w.runs.snapshots) == len(report["snapshots"]), timeout=WAIT_MS)
    run = w.runs.runs[str(Path(w.control.out_dir).resolve())]
    assert run.text(RUNTIME_COL) == "onnxruntime" and w.runs.tree.headerItem().text(RUNTIME_COL) == "onnxruntime latency"
    assert not w.runs.tree.isColumnHidden(RUNTIME_COL)
    for snap in report["snapshots"]:
        fig = snap["latency"]["onnxruntime"]
        assert fig is not None, snap.get("latency_why")
        assert fig["p10_ms"] <= fig["median_ms"] <= fig["p90_ms"] and fig["repeats"] >= 5
        assert fig["threads"] == snap["latency"]["eager"]["threads"] == LATENCY_THREADS and fig["batch"] == 1
        item = next(run.child(i) for i in range(run.childCount())
                    if run.child(i).data(0, PATH_ROLE) == str((Path(w.control.out_dir) / snap["path"]).resolve()))
        want = cell(fig)
        assert item.text(RUNTIME_COL) == want
        assert f"median {fig['median_ms']:.4g} ms, p10 {fig['p10_ms']:.4g} ms" in item.toolTip(RUNTIME_COL)
        eager = snap["latency"]["eager"]
        assert f"median {eager['median_ms']:.4g} ms" in item.toolTip(LATENCY_COL)
    first, last = sorted(w.runs.snapshots)[0], sorted(w.runs.snapshots)[-1]        # Compare: both, with spread
    dialog = w.compare(first, last)
    table = dialog.totals_table
    totals = {table.item(r, 0).text(): [table.item(r, c).text() for c in (1, 2)] for r in range(table.rowCount())}
    a, b = report["snapshots"][0]["latency"], report["snapshots"][-1]["latency"]
    assert totals["latency on eager (batch 1)"] == [cell(a["eager"]), cell(b["eager"])]
    assert totals["latency on onnxruntime (batch 1)"] == [cell(a["onnxruntime"]), cell(b["onnxruntime"])]
    dialog.close()


def test_a_run_on_a_runtime_missing_here_is_refused_in_one_line(make_window, qtbot, messages):
    why = runtimes.get("openvino").missing()
    if not why:
        pytest.skip("OpenVINO is installed here")
    w = make_window(stages=[{"kind": "train", "epochs": 1}])
    w.doc.set_top("runtime", "openvino")                            # as a recipe naming it would
    assert w.runtime_combo.currentText() == "openvino" and why in w.runtime_combo.toolTip()
    assert w.start_run()
    wait_run(qtbot, w)
    assert [(t, m.count("\n")) for t, m, _ in messages] == [("Cannot run", 0)]
    assert messages[0][1].endswith(f"openvino: cannot be used here: {why}") and "workbench[openvino]" in messages[0][1]
    assert str(Path(w.control.out_dir).resolve()) not in w.runs.runs                   # no row for a run that never ran
    assert not (Path(w.control.out_dir) / "snapshots").exists()
