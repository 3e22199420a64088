"""The runs view reads the runs folder off the GUI thread and shows what `workbench runs` prints: the same runs in
the same order (newest first), the same statuses, debris greyed under its run and never a snapshot."""
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from run_folder_helpers import TEMP, runs_folder
from waits import WAIT_MS

from workbench.core.run_folder import list_runs
from workbench.ui.widgets import runs_view
from workbench.ui.widgets.runs_view import DEBRIS_ROLE, PATH_ROLE, RunsView


def titles(view: RunsView) -> list[str]:
    return [view.tree.topLevelItem(i).text(0) for i in range(view.tree.topLevelItemCount())]


def children(view: RunsView, name: str) -> list:
    item = next(view.tree.topLevelItem(i) for i in range(view.tree.topLevelItemCount())
                if view.tree.topLevelItem(i).text(0).startswith(name))
    return [item.child(i) for i in range(item.childCount())]


def test_runs_are_read_off_the_gui_thread_and_shown_as_workbench_runs_lists_them(qtbot, tmp_path, monkeypatch):
    root = runs_folder(tmp_path / "runs")
    threads = []

    def spy(folder):
        threads.append(threading.current_thread())
        return list_runs(folder)

    monkeypatch.setattr(runs_view, "list_runs", spy)
    view = RunsView()
    qtbot.addWidget(view)
    view.load_dir(str(root))
    assert view.loading() and titles(view) == []          # nothing read on the GUI thread
    qtbot.waitUntil(lambda: not view.loading(), timeout=WAIT_MS)
    assert threads and threading.main_thread() not in threads
    expected = [f"{r.name} ({'unreadable' if r.problem else r.status})" for r in list_runs(root)]
    assert titles(view) == expected == ["b-new (failed)", "c-killed (interrupted)", "a-old (finished)",
                                        "d-unreadable (unreadable)"]
    assert view.newest == str((root / "b-new").resolve())
    rows = children(view, "c-killed")
    debris = [c for c in rows if c.data(0, DEBRIS_ROLE)]
    assert [c.text(0) for c in debris] == ["debris: .report.json.x1y2z3w4.tmp (a file cut short while being written)",
                                           f"debris: snapshots/{TEMP} (a snapshot cut short while being written)"]
    assert all(c.flags() == Qt.ItemFlag.NoItemFlags and not c.data(0, PATH_ROLE) for c in debris)   # greyed
    assert sorted(Path(p).relative_to(root.resolve()) for p in view.snapshots) == \
        [Path(run, "snapshots", "00-baseline") for run in ("a-old", "b-new", "c-killed")]
    assert all(TEMP not in p for p in view.snapshots)

    view.add_run(str(root / "e-live"), "e-live (running)")  # a run started here: on top, its title its own
    view.buttons["Refresh"].click()
    qtbot.waitUntil(lambda: not view.loading(), timeout=WAIT_MS)
    assert titles(view) == ["e-live (running)", *expected] and view.newest == str((root / "e-live").resolve())
    assert len([c for c in children(view, "c-killed") if c.data(0, DEBRIS_ROLE)]) == 2   # read again, not doubled
    assert (root / "c-killed" / "snapshots" / TEMP).is_dir()                                # nothing deleted
