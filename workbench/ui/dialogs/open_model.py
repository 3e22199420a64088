"""Choosing a model spec: sample models, torchvision architectures with their weights, timm models (marking those
whose pretrained weights are in the local cache), built-in architectures, recent models, files and snapshot folders
(with an architecture for a bare state dict, and an explicit choice to trust a file that can run code)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
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

from ...core import archs, zoo
from ...core.models import sample_index, torchvision_names
from ..qthreading.tasks import run_task
from . import errors
from .common import Buttons, button_box, buttons_row

TRUST_TEXT = ("TorchScript files, .pt2 (torch.export) archives and pickled full models are programs: their code runs "
              "when they are loaded or run, with your permissions: it could read or change any of your files. Tick this "
              "only for a file from a source you trust. Safetensors, plain state dicts and snapshot folders never need it.")
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".pt2", ".ts", ".jit", ".bin", ".ckpt")
MODEL_FILTER = f"Models ({' '.join('*' + s for s in MODEL_SUFFIXES)});;All files (*)"


class _SearchPage(QWidget):
    """A tab's page: a search box (`search`) over a list, in a column (`rows`) that more rows can join."""

    def __init__(self, search: QLineEdit) -> None:
        super().__init__()
        self.search = search
        self.rows = QVBoxLayout(self)


def _searchable_list(items: list[tuple[str, str]], placeholder: str) -> tuple[_SearchPage, QListWidget]:
    """A search box over a list; each item is (spec, tooltip)."""
    search = QLineEdit(placeholderText=placeholder, clearButtonEnabled=True)
    box = _SearchPage(search)
    view = QListWidget()
    for spec, tip in items:
        item = QListWidgetItem(spec)
        item.setToolTip(tip)
        view.addItem(item)

    def apply(text: str) -> None:
        for i in range(view.count()):
            view.item(i).setHidden(text.lower() not in view.item(i).text().lower())
    search.textChanged.connect(apply)
    box.rows.setContentsMargins(0, 6, 0, 0)
    box.rows.addWidget(search)
    box.rows.addWidget(view)
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
                ("torchvision", [(f"torchvision:{n}", "") for n in torchvision_names()], "Search torchvision…"),
                ("timm", [], "Search timm (loading the list…)"),
                ("Architectures", [(f"arch:{n}", "untrained, sized for the data") for n in archs.ARCHS], "Search…"),
                ("Recent", [(r, "") for r in (recent or [])], "Search recent…")):
            page, view = _searchable_list(items, hint)
            view.itemDoubleClicked.connect(lambda _item: self.accept())
            view.currentTextChanged.connect(self.path_edit_clear)
            self.lists.append(view)
            self.tabs.addTab(page, title)
            if title == "torchvision":
                self.weights_combo = QComboBox()
                self.weights_combo.setToolTip("torchvision's pretrained weights for the selected model, read from its "
                                              "cache ($TORCH_HOME/hub/checkpoints; downloaded when online)")
                view.currentTextChanged.connect(self._fill_weights)
                page.rows.addLayout(_row("Weights:", self.weights_combo))
            elif title == "timm":
                self.timm_page = page
                self.pretrained_box = QCheckBox("pretrained weights (from the Hugging Face cache; bold: already cached)")
                page.rows.addWidget(self.pretrained_box)
        run_task(_timm_listing, on_done=self._fill_timm, on_error=lambda e: self.timm_page.search.setPlaceholderText(
            f"timm is not available: {e.message}"))
        self.tabs.addTab(self._file_page(), "File or folder")
        self.spec_edit = QLineEdit(placeholderText="or type a spec: sample:NAME, torchvision:NAME[:weights=W], "
                                                   "timm:NAME[:pretrained], arch:NAME, a path")
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
        self.arch_edit = QLineEdit(placeholderText="e.g. arch:lenet5, torchvision:resnet18, timm:resnet50 (for a bare state dict)")
        self.arch_edit.setCompleter(QCompleter([f"arch:{n}" for n in archs.ARCHS] + [f"torchvision:{n}" for n in torchvision_names()]
                                               + [f"timm:{n}" for n in ("resnet50", "efficientnet_b0", "convnext_tiny",
                                                                        "vit_small_patch16_224", "mobilenetv3_large_100")], self))
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
            spec = item.text() if item and not item.isHidden() else ""
            title = self.tabs.tabText(page)
            if spec and title == "torchvision" and self.weights_combo.currentIndex() > 0:
                return f"{spec}:weights={self.weights_combo.currentText()}"
            if spec and title == "timm" and self.pretrained_box.isChecked():
                return f"{spec}:pretrained"
            return spec
        return self.path_edit.text().strip()

    def _fill_weights(self, spec: str) -> None:
        """The weights torchvision offers for the selected model (random weights first)."""
        self.weights_combo.clear()
        self.weights_combo.addItem("random (from the seed)")
        name = spec.partition(":")[2]
        if not name:
            return
        try:
            from torchvision.models import get_model_weights
            names = [w.name for w in get_model_weights(name)]
        except (ValueError, KeyError):
            names = []
        if names:
            self.weights_combo.addItems(["DEFAULT", *names])

    def _fill_timm(self, listing: list[tuple[str, bool]]) -> None:
        view = self.lists[2]
        bold = QFont()
        bold.setBold(True)
        for name, cached in listing:
            item = QListWidgetItem(f"timm:{name}")
            item.setToolTip("pretrained weights in the local cache" if cached else "pretrained weights not cached "
                            "(random weights work offline)")
            if cached:
                item.setFont(bold)
            view.addItem(item)
        self.timm_page.search.setPlaceholderText(f"Search {len(listing):,} timm models…")


def _timm_listing() -> list[tuple[str, bool]]:
    """(name, pretrained weights cached) of every timm model: off the GUI thread (importing timm takes seconds)."""
    return [(name, zoo.timm_cached(name)) for name in zoo.timm_names()]


def _row(label: str, widget: QWidget) -> QFormLayout:
    form = QFormLayout()
    form.addRow(label, widget)
    return form


def head_question(spec: str, head: tuple[str, int, int]) -> str:
    """The question asked when the user's own checkpoint has a classifier for another class count than the data's."""
    layer, have, want = head
    return (f"{Path(spec).name}: its classifier {layer} has {have} classes, the data has {want}.\n\nReplace the head "
            f"with a new {want}-class layer (your trained head is discarded), or keep the model and choose other data?")


def ask_replace_head(parent: QWidget | None, spec: str, head: tuple[str, int, int]) -> bool:
    """Never replace a head silently: True only when the user answers "Replace head" (Cancel is the default)."""
    return errors.ask(parent, "Replace the classifier head?", head_question(spec, head), yes="Replace head", no="Cancel")


def dropped_spec(paths: list[str]) -> str | None:
    """The model spec for files dropped on the window (first usable path)."""
    for p in paths:
        path = Path(p)
        if path.is_dir() or path.suffix.lower() in MODEL_SUFFIXES:
            return str(path)
    return None
