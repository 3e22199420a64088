"""`workbench gui`: the QApplication, the style sheet, the error hook and the main window."""
from __future__ import annotations

import sys

from ..core.resources import icon, style_sheet

STYLE = style_sheet()
ICON = icon("workbench")
# While a worker thread runs Python between torch kernels, the GUI thread waits for the GIL up to
# the switch interval (5 ms by default) each time it needs it; 1 ms keeps the event loop responsive.
GIL_SWITCH_INTERVAL = 0.001
_COLLECTOR = None   # pyqtgraph's GarbageCollector, once per process


def collect_on_the_gui_thread() -> None:
    """Python's cyclic garbage collection only on the GUI thread, on a timer (pyqtgraph's GarbageCollector). Left
    automatic, a collection that a worker thread happens to trigger can destroy a Qt object of the GUI: its
    destructor then waits for the GIL while holding Qt's connection lock, and the GUI thread, holding the GIL,
    waits for that lock (a deadlock seen in the tests under load)."""
    global _COLLECTOR
    if _COLLECTOR is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector
        _COLLECTOR = GarbageCollector(interval=0.5)


def make_app(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    from .refcount_guard import protect_singletons
    from .settings import APP, ORG
    from .widgets import pg_setup  # noqa: F401 - configures pyqtgraph (after PySide6)
    protect_singletons()      # PySide6 6.12 on Python 3.11 leaks references to None: see refcount_guard
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationDisplayName("Workbench")
    app.setStyle("Fusion")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    collect_on_the_gui_thread()
    if STYLE.exists():
        app.setStyleSheet(STYLE.read_text())
    from PySide6.QtGui import QIcon
    app.setWindowIcon(QIcon(str(ICON)))
    return app


def main(model: str | None = None, data: str | None = None, recipe: str | None = None, arch: str | None = None) -> int:
    """Open the main window; returns the application's exit code."""
    app = make_app()
    from .dialogs.errors import install_excepthook
    from .main_window import MainWindow
    install_excepthook()
    window = MainWindow(model=model, data=data, recipe=recipe, arch=arch)
    window.show()
    code = int(app.exec())
    from .qthreading.tasks import pool
    pool().clear()             # queued work is dropped; running work (a model load) may finish
    pool().waitForDone(10_000)
    return code
