"""The window's default size and dock layout, fitted to the screen: on a laptop (1366x768) every panel keeps a usable
share of the window; on a large screen the panels get room to spare. View ▸ Reset layout puts this layout back."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt

LEFT, RIGHT, BOTTOM = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
MIN_SIZE = QSize(1280, 720)     # a window is never made smaller than this (the screen may be, offscreen)
COMPACT_BELOW = QSize(1600, 900)


def default_size(available: QSize) -> QSize:
    """Most of the screen, at least MIN_SIZE."""
    return QSize(max(MIN_SIZE.width(), int(available.width() * 0.95)), max(MIN_SIZE.height(), int(available.height() * 0.95)))


def fit_to_screen(window) -> None:
    """Size the window to its screen and lay the docks out for that size."""
    screen = window.screen()
    window.resize(default_size(screen.availableGeometry().size()) if screen else MIN_SIZE)
    arrange(window)


def arrange(window, size: QSize | None = None) -> None:
    """Docks for a window of `size` (default: its size now): the model browser above the layer inspector on the left,
    the pipeline on the right, runs beside progress at the bottom, the plots in the middle; shares by size."""
    size = size or window.size()
    w, h = size.width(), size.height()
    compact = w < COMPACT_BELOW.width() or h < COMPACT_BELOW.height()
    docks = window.docks
    for key, area in (("browser", LEFT), ("inspector", LEFT), ("pipeline", RIGHT), ("runs", BOTTOM), ("progress", BOTTOM)):
        docks[key].setFloating(False)
        docks[key].show()
        window.addDockWidget(area, docks[key])
    window.splitDockWidget(docks["browser"], docks["inspector"], Qt.Orientation.Vertical)
    window.splitDockWidget(docks["runs"], docks["progress"], Qt.Orientation.Horizontal)
    left, right = (int(w * 0.31), int(w * 0.27)) if compact else (int(w * 0.28), int(w * 0.24))
    window.resizeDocks([docks["browser"], docks["pipeline"]], [left, right], Qt.Orientation.Horizontal)
    window.resizeDocks([docks["runs"], docks["progress"]], [int(w * 0.55), int(w * 0.45)], Qt.Orientation.Horizontal)
    window.resizeDocks([docks["runs"]], [int(h * (0.22 if compact else 0.24))], Qt.Orientation.Vertical)
    window.resizeDocks([docks["browser"], docks["inspector"]], [int(h * 0.5), int(h * 0.5)], Qt.Orientation.Vertical)
