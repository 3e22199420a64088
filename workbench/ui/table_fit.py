"""Columns that fit their content: numbers as wide as their widest cell, the name column as wide as its names (up
to NAME_MAX) or all the room that is left; a narrow panel scrolls sideways rather than cutting names. The user can
still drag any column wider or narrower; cells carry their full text as tooltips."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QHeaderView, QTableView, QTreeView

NAME_MAX = 300     # the name column gets its content's width up to this much, more when the view has room
NUMBER_MAX = 220


class ColumnFitter(QObject):
    """Sizes a tree or table view's columns to their content whenever `fit()` is called or the view is resized."""

    def __init__(self, view: QTreeView | QTableView, name_column: int = 0) -> None:
        super().__init__(view)
        self.view, self.name_column = view, name_column
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(36)
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self._fit_now)
        view.viewport().installEventFilter(self)

    def header(self) -> QHeaderView:
        return self.view.header() if isinstance(self.view, QTreeView) else self.view.horizontalHeader()

    def fit(self) -> None:
        self._timer.start()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._timer.start()
        return False

    def _content(self, column: int) -> int:
        header = self.header()
        hint = self.view.sizeHintForColumn(column)
        return max(hint, header.sectionSizeHint(column)) + 8

    def _fit_now(self) -> None:
        header = self.header()
        columns = [c for c in range(header.count()) if not header.isSectionHidden(c)]
        if not columns:
            return
        widths = {c: min(NUMBER_MAX, self._content(c)) for c in columns if c != self.name_column}
        name_wanted = self._content(self.name_column)
        room = self.view.viewport().width() - sum(widths.values())
        name = max(min(NAME_MAX, name_wanted), room)
        for c, w in widths.items():
            header.resizeSection(c, w)
        if self.name_column in columns:
            header.resizeSection(self.name_column, name)
