"""The runs view lists each run's exported files under it, with the file's own test accuracy and size; these rows are
never snapshots (not selectable, no path)."""
import json

from PySide6.QtCore import Qt
from run_folder_helpers import write_run
from waits import WAIT_MS

from workbench.ui.widgets.runs_view import BYTES_COL, EXPORT_ROLE, PATH_ROLE, TEST_COL, RunsView

EXPORTS = [{"format": "onnx_int8", "path": "exports/model.int8.onnx", "bytes": 12_345, "verified": True,
            "accuracy": 0.9812, "check": "top-1 agreement >= 95%"},
           {"format": "packed", "path": "exports/model.packed", "bytes": 2_000, "verified": True}]


def _export_rows(view, key):
    item = view.runs[key]
    return [c for c in (item.child(i) for i in range(item.childCount())) if c.data(0, EXPORT_ROLE)]


def test_exports_are_listed_with_their_accuracy(qtbot, tmp_path):
    run = write_run(tmp_path / "runs" / "r1")
    report = json.loads((run / "report.json").read_text())
    (run / "report.json").write_text(json.dumps({**report, "exports": EXPORTS}))
    view = RunsView()
    qtbot.addWidget(view)
    view.load_dir(str(tmp_path / "runs"))
    qtbot.waitUntil(lambda: not view.loading(), timeout=WAIT_MS)
    key = str(run.resolve())
    rows = _export_rows(view, key)
    assert [r.text(0) for r in rows] == ["export · onnx_int8", "export · packed"]
    assert rows[0].text(TEST_COL) == "98.12%" and rows[1].text(TEST_COL) == "–"        # packed: not measured
    assert rows[0].text(BYTES_COL) and rows[0].text(BYTES_COL) != rows[1].text(BYTES_COL)
    assert all(r.flags() == Qt.ItemFlag.ItemIsEnabled and not r.data(0, PATH_ROLE) for r in rows)
    view.tree.setCurrentItem(rows[0])
    assert view.selected_paths() == [] and not view.buttons["Export…"].isEnabled()
    view.buttons["Refresh"].click()                                   # read again: not doubled
    qtbot.waitUntil(lambda: not view.loading(), timeout=WAIT_MS)
    assert len(_export_rows(view, key)) == 2


def test_a_run_that_ends_here_shows_its_exports(qtbot, tmp_path):
    view = RunsView()
    qtbot.addWidget(view)
    run = tmp_path / "live"
    view.add_run(str(run), "live (running)")
    write_run(run)
    report = json.loads((run / "report.json").read_text())
    (run / "report.json").write_text(json.dumps({**report, "exports": EXPORTS[:1]}))
    view.show_exports(str(run))                         # read off the GUI thread
    qtbot.waitUntil(lambda: len(_export_rows(view, str(run.resolve()))) == 1, timeout=WAIT_MS)
    rows = _export_rows(view, str(run.resolve()))
    assert len(rows) == 1 and rows[0].text(TEST_COL) == "98.12%"
