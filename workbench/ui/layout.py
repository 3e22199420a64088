"""The window's default size and dock layout, fitted to the screen: on a laptop (1366x768) every panel keeps a usable
share of the window; on a large screen the panels get room to spare. View ▸ Reset layout puts this layout back."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QSplitter

LEFT, RIGHT, BOTTOM = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
MIN_SIZE = QSize(1280, 720)     # a window is never made smaller than this (the screen may be, offscreen)
COMPACT_BELOW = QSize(1600, 900)


def default_size(available: QSize) -> QSize:
    """Most of the screen (all of a laptop's: every pixel counts there), at least MIN_SIZE."""
    share = 1.0 if available.width() < COMPACT_BELOW.width() or available.height() < COMPACT_BELOW.height() else 0.95
    return QSize(max(MIN_SIZE.width(), int(available.width() * share)), max(MIN_SIZE.height(), int(available.height() * share)))


def fit_to_screen(window) -> None:
    """Size the window to its screen and lay the docks out for that size."""
    screen = window.screen()
    window.resize(default_size(screen.availableGeometry().size()) if screen else MIN_SIZE)
    window.layout().activate()
    arrange(window)


def arrange(window, size: QSize | None = None) -> None:
    """Docks for a window of `size` (default: its size now): the model browser above the layer inspector on the left,
    the pipeline on the right, runs beside progress at the bottom, the plots in the middle; shares by size."""
    size = size or window.size()
    w, h = size.width(), size.height()
    compact = w < COMPACT_BELOW.width() or h < COMPACT_BELOW.height()
    docks = window.docks
    # on a laptop the side columns (module tree and layer inspector; pipeline) run the full height, the runs and
    # the progress sit under the plots only; on a large screen the bottom docks span the width
    window.setCorner(Qt.Corner.BottomLeftCorner, LEFT if compact else BOTTOM)
    window.setCorner(Qt.Corner.BottomRightCorner, RIGHT if compact else BOTTOM)
    for key, area in (("browser", LEFT), ("inspector", LEFT), ("pipeline", RIGHT), ("runs", BOTTOM), ("progress", BOTTOM)):
        docks[key].setFloating(False)
        docks[key].show()
        window.addDockWidget(area, docks[key])
    window.splitDockWidget(docks["browser"], docks["inspector"], Qt.Orientation.Vertical)
    window.splitDockWidget(docks["runs"], docks["progress"], Qt.Orientation.Horizontal)
    left, right = (int(w * 0.29), int(w * 0.25)) if compact else (int(w * 0.28), int(w * 0.24))
    window.resizeDocks([docks["browser"], docks["pipeline"]], [left, right], Qt.Orientation.Horizontal)
    window.resizeDocks([docks["runs"], docks["progress"]], [int(w * 0.55), int(w * 0.45)], Qt.Orientation.Horizontal)
    window.resizeDocks([docks["runs"]], [int(h * (0.19 if compact else 0.24))], Qt.Orientation.Vertical)
    share = 0.62 if compact else 0.55     # the module tree: at least 12 rows at 1366x768
    window.resizeDocks([docks["browser"], docks["inspector"]], [int(h * share), int(h * (1 - share))],
                       Qt.Orientation.Vertical)
    split = docks["pipeline"].widget().findChild(QSplitter)
    if split is not None:                 # the stage cards above, the settings form below: the form gets 2/3
        total = sum(split.sizes()) or h
        split.setSizes([total // 3, total - total // 3])
