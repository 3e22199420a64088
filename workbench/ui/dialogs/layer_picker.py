"""Picking the layers (of the open model) that a stage setting applies to."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QListWidget, QListWidgetItem, QVBoxLayout

from .common import button_box


class LayerPicker(QDialog):
    """Check the layers (of the open model) a setting applies to."""

    def __init__(self, parent, names: list[str], current: Any) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pick layers")
        chosen = set(current) if isinstance(current, (list, dict)) else set()
        self.view = QListWidget()
        for name in names or []:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in chosen else Qt.CheckState.Unchecked)
            self.view.addItem(item)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(button_box(self))

    def picked(self) -> list[str]:
        return [self.view.item(i).text() for i in range(self.view.count())
                if self.view.item(i).checkState() == Qt.CheckState.Checked]
