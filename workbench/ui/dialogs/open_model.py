"""Choosing a model spec: sample models, torchvision architectures (searchable), files and snapshot folders."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QDialog,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core import archs
from ...core.models import sample_index, torchvision_names
from .common import Buttons, button_box, buttons_row

TRUST_TEXT = ("TorchScript files, pickled full models and .pt2 files with pickled parts contain code that runs "
              "when they are loaded, with your permissions: it could read or change any of your files. Tick this only "
              "for a file from a source you trust. Safetensors, plain state dicts and snapshot folders never need it.")
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".pt2", ".ts", ".jit", ".bin", ".ckpt")
MODEL_FILTER = f"Models ({' '.join('*' + s for s in MODEL_SUFFIXES)});;All files (*)"


def _searchable_list(items: list[tuple[str, str]], placeholder: str) -> tuple[QWidget, QListWidget]:
    """A search box over a list; each item is (spec, tooltip)."""
    box = QWidget()
    search = QLineEdit(placeholderText=placeholder, clearButtonEnabled=True)
    view = QListWidget()
    for spec, tip in items:
        item = QListWidgetItem(spec)
        item.setToolTip(tip)
        view.addItem(item)

    def apply(text: str) -> None:
        for i in range(view.count()):
            view.item(i).setHidden(text.lower() not in view.item(i).text().lower())
    search.textChanged.connect(apply)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 6, 0, 0)
    layout.addWidget(search)
    layout.addWidget(view)
    box.search = search  # type: ignore[attr-defined]
    return box, view


class OpenModelDialog(QDialog):
    """Returns a model spec in `spec()`; double-click or OK accepts."""

    def __init__(self, parent=None, recent: list[str] | None = None, start_dir: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Open model")
        self.resize(520, 480)
        self.start_dir = start_dir
        self.tabs = QTabWidget()
        samples = [(f"sample:{name}", f"{info.get('arch', '')} · accuracy {info.get('accuracy', 0):.3f}")
                   for name, info in sample_index().items()]
        self.lists: list[QListWidget] = []
        for title, items, hint in (
                ("Samples", samples, "Search sample models…"),
                ("torchvision", [(f"torchvision:{n}", "random weights") for n in torchvision_names()], "Search torchvision…"),
                ("Architectures", [(f"arch:{n}", "untrained, sized for the data") for n in archs.ARCHS], "Search…"),
                ("Recent", [(r, "") for r in (recent or [])], "Search recent…")):
            page, view = _searchable_list(items, hint)
            view.itemDoubleClicked.connect(lambda _item: self.accept())
            view.currentTextChanged.connect(self.path_edit_clear)
            self.lists.append(view)
            self.tabs.addTab(page, title)
        self.tabs.addTab(self._file_page(), "File or folder")
        self.spec_edit = QLineEdit(placeholderText="or type a spec: sample:NAME, torchvision:NAME, arch:NAME, a path")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.spec_edit)
        layout.addWidget(button_box(self, Buttons.Open | Buttons.Cancel))

    def _file_page(self) -> QWidget:
        page = QWidget()
        self.path_edit = QLineEdit(placeholderText="/path/to/model.safetensors or a snapshot folder")
        hint = QLabel("Files: .safetensors, .pt/.pth state dicts (with a workbench record), .pt2, TorchScript, or a "
                      "snapshot folder from a run. You can also drop files on the main window.")
        hint.setWordWrap(True)
        self.arch_edit = QLineEdit(placeholderText="e.g. arch:lenet5, torchvision:resnet18 (for a bare state dict)")
        self.arch_edit.setCompleter(QCompleter([f"arch:{n}" for n in archs.ARCHS] + [f"torchvision:{n}" for n in torchvision_names()], self))
        self.arch_edit.setToolTip("A plain state dict holds only tensors: name the architecture they belong to.")
        self.trust_box = QCheckBox("Trust this file: allow it to run code while it loads")
        self.trust_box.setToolTip(TRUST_TEXT)
        trust_hint = QLabel(TRUST_TEXT)
        trust_hint.setWordWrap(True)
        trust_hint.setObjectName("hint")
        form = QFormLayout()
        form.addRow("Architecture:", self.arch_edit)
        layout = QVBoxLayout(page)
        layout.addWidget(self.path_edit)
        layout.addLayout(buttons_row(("Choose file…", self._choose_file), ("Choose snapshot folder…", self._choose_dir)))
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addWidget(self.trust_box)
        layout.addWidget(trust_hint)
        layout.addStretch()
        return page

    def options(self) -> dict:
        """How to load the chosen file: `arch` for a bare state dict, `trust` when the user ticked it."""
        if self.spec_edit.text().strip() or self.tabs.currentIndex() < len(self.lists):
            return {}
        return {"arch": self.arch_edit.text().strip() or None, "trust": self.trust_box.isChecked()}

    def path_edit_clear(self, _text: str) -> None:
        self.spec_edit.clear()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", self.start_dir, MODEL_FILTER)
        if path:
            self.path_edit.setText(path)

    def _choose_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open snapshot folder", self.start_dir)
        if path:
            self.path_edit.setText(path)

    def spec(self) -> str:
        if self.spec_edit.text().strip():
            return self.spec_edit.text().strip()
        page = self.tabs.currentIndex()
        if page < len(self.lists):
            item = self.lists[page].currentItem()
            return item.text() if item and not item.isHidden() else ""
        return self.path_edit.text().strip()


def dropped_spec(paths: list[str]) -> str | None:
    """The model spec for files dropped on the window (first usable path)."""
    for p in paths:
        path = Path(p)
        if path.is_dir() or path.suffix.lower() in MODEL_SUFFIXES:
            return str(path)
    return None
