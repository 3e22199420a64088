"""Turning the event loop by hand, safely.

PySide6 6.12's static `QCoreApplication.processEvents()` (every overload) and `QTest.qWait()` drop a
reference to `None` on each call; a loop that calls them a few thousand times ends the interpreter
("Fatal Python error: none_dealloc"). `QEventLoop.processEvents()` on an instance does not.
"""
from __future__ import annotations

from PySide6.QtCore import QEventLoop

_LOOP: QEventLoop | None = None


def process_events(max_ms: int = 0) -> None:
    """Process pending events (for up to `max_ms` milliseconds) on the calling (GUI) thread."""
    global _LOOP
    if _LOOP is None:
        _LOOP = QEventLoop()
    if max_ms:
        _LOOP.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, max_ms)
    else:
        _LOOP.processEvents()
