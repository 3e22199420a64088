"""Choosing a data spec: a kind from the list (or typed), then a folder where it needs one."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QFileDialog, QFormLayout, QLabel, QVBoxLayout

from .common import button_box, with_button

DATA_SPECS = ["sample:digits", "fake:3x32x32:10:256", "fake:3x224x224:1000:64", "mnist:", "fashionmnist:", "cifar10:",
              "cifar100:", "svhn:", "imagefolder:"]


class OpenDataDialog(QDialog):
    """A data spec: pick a kind, then a folder where it needs one."""

    def __init__(self, parent=None, current: str = "", recent: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open data")
        self.combo = QComboBox(editable=True)
        self.combo.addItems(list(dict.fromkeys([*(recent or []), *DATA_SPECS])))
        self.combo.setCurrentText(current or "sample:digits")
        form = QFormLayout()
        form.addRow("Data spec", with_button(self.combo, "Folder…", self._browse))
        help_label = QLabel("sample:digits is bundled. mnist:, cifar10:, … read local files (never downloaded): "
                            "add the folder after the colon.")
        help_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(help_label)
        layout.addWidget(button_box(self))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder")
        if folder:
            prefix = self.combo.currentText().partition(":")[0] or "imagefolder"
            self.combo.setCurrentText(f"{prefix}:{folder}")

    def spec(self) -> str:
        return self.combo.currentText().strip()
