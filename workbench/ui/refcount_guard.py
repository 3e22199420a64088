"""A guard against a reference-counting bug of some PySide6 builds on Python 3.11 and earlier.

With PySide6/shiboken6 6.12.0 on Python 3.11, every call of a Qt method that returns nothing takes one reference
from `None` without having given it one (`QLabel.setText`, `QWidget.repaint`, `QGraphicsItem.setPos`, ... and
`processEvents` itself); some calls do the same to `True` and `False`. On Python 3.12 and later these objects are
immortal and nothing happens; on 3.11 their reference counts drift down as the window works (pyqtgraph redraws
make thousands of such calls a second) until Python aborts with "Fatal Python error: none_dealloc: deallocating
None". `protect_singletons()` checks whether the running PySide6 has the bug and, if so, gives these objects the
headroom that Python 3.12 gives them (they are never deallocated anyway), so the window keeps running.
"""
from __future__ import annotations

import ctypes
import sys

HEADROOM = 1 << 40          # references added to each singleton: far beyond what any session could leak
PROBE_CALLS = 64
_done = False


def leaks_none() -> bool:
    """Whether a void Qt method call takes a reference from None (measured on a throw-away QObject)."""
    from PySide6.QtCore import QObject
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None) >= PROBE_CALLS // 2


def protect_singletons() -> bool:
    """Give None, True and False HEADROOM more references when PySide6 leaks them (once; CPython < 3.12 only).
    Returns whether it did."""
    global _done
    if _done or sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or not leaks_none():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += HEADROOM
    _done = True
    return True
