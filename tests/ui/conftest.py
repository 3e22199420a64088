"""Fixtures for driving the real window offscreen: isolated settings, recorded message boxes, tiny recipes."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS


@pytest.fixture(autouse=True)
def gui_thread_collection(qapp):
    """As in the application (ui/app.py): cyclic garbage collection only on the GUI thread."""
    from workbench.ui.app import collect_on_the_gui_thread
    collect_on_the_gui_thread()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path):
    """QSettings (INI, user scope) written under the test's folder, never the user's."""
    folder = tmp_path / "settings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


class Messages(list):
    """Every message box shown: (title, text, details). `answer` is what a question box returns."""
    answer = QMessageBox.StandardButton.No

    def texts(self) -> str:
        return "\n".join(f"{t}: {m}" for t, m, _ in self)


@pytest.fixture(autouse=True)
def messages(monkeypatch):
    shown = Messages()

    def fake_exec(box):
        shown.append((box.windowTitle(), box.text(), box.detailedText()))
        if box.standardButtons() & QMessageBox.StandardButton.Yes:
            return shown.answer
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


TINY = [{"kind": "train", "epochs": 1}, {"kind": "export", "formats": ["safetensors"]}]


@pytest.fixture
def make_window(qtbot, tmp_path):
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow
    make_app()
    from .helpers import write_recipe
    windows = []

    def make(stages=TINY, model="sample:digits_mlp", recipe=None):
        recipe = recipe or write_recipe(tmp_path / "recipe.yaml", stages)
        w = MainWindow(model=model, data="sample:digits", recipe=recipe, runs_dir=str(tmp_path / "runs"))
        qtbot.addWidget(w)
        w.show()
        windows.append(w)
        qtbot.waitUntil(lambda: w.browser.info is not None and w.model_spec == model, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not w.runs.loading(), timeout=WAIT_MS)   # the runs folder is read off the GUI thread
        return w

    yield make
    for w in windows:          # a run still going is stopped (and killed if it must be) before the next test
        if w.control.running():
            w.control.KILL_AFTER_MS = 1000
            w.control.stop()
        qtbot.waitUntil(lambda w=w: not w.control.running() and w.control.worker is None, timeout=WAIT_MS)
