"""Choosing a data spec: a kind from the list (or typed), then a folder where it needs one."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

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
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Data spec", row)
        help_label = QLabel("sample:digits is bundled. mnist:, cifar10:, … read local files (never downloaded): "
                            "add the folder after the colon.")
        help_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(help_label)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder")
        if folder:
            prefix = self.combo.currentText().partition(":")[0] or "imagefolder"
            self.combo.setCurrentText(f"{prefix}:{folder}")

    def spec(self) -> str:
        return self.combo.currentText().strip()
