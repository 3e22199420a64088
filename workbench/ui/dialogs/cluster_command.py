"""Run ▸ Cluster command…: the recipe saved to a file, and the torchrun commands that run it on several GPUs or machines.

The commands come from `core.command_run.cluster_commands` (the forms the README's Scale-out section shows); this
dialog only holds the numbers and shows the text, live, read-only and selectable, with a Copy button.
"""
from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QComboBox, QDialog, QFileDialog, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QSpinBox, QVBoxLayout

from ...core.command_run import cluster_commands, cluster_text
from ...core.recipe import Recipe
from ...core.run_handle import RunOptions
from . import errors
from .common import Buttons, button_box, buttons_row


def with_model_and_data(recipe: Recipe, model: str | None, data: str | None) -> Recipe:
    """The recipe with the window's model and data as its own (a data mapping keeps its settings, with the new spec)."""
    merged: str | dict[str, Any] | None = data
    if data and isinstance(recipe.data, dict):
        merged = {**recipe.data, "spec": data}
    return dataclasses.replace(recipe, model=model or recipe.model, data=merged or recipe.data)


def run_name(recipe: Recipe, path: str) -> str:
    """A name for the run folder and the rendezvous id: the recipe's name, else the file's."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", recipe.name or Path(path).stem).strip("_.") or "run"


class ClusterCommandDialog(QDialog):
    def __init__(self, recipe_path: str, name: str, runs_dir: str, nproc: int = 2, options: dict | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cluster command")
        self.setObjectName("clusterCommandDialog")
        self.recipe_path, self.name, self.options = recipe_path, name, dict(options or {})
        saved = QLabel(f"The recipe, with its model and data, is saved to <b>{html.escape(recipe_path)}</b>. Run it with one "
                       "of these commands, on machines where the workbench (and so torchrun) is installed:")
        saved.setWordWrap(True)
        saved.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.processes = self._spin("processesPerNode", 1, 1024, max(2, nproc),
                                    "Processes on each machine: one per GPU on CUDA")
        self.nodes = self._spin("nodes", 2, 4096, 2, "How many machines run the same command together")
        self.host = QLineEdit("HOST")
        self.host.setObjectName("rendezvousHost")
        self.host.setToolTip("A machine every node can reach (for example the first one); torchrun's c10d rendezvous "
                             "listens on its port 29500")
        self.device = QComboBox()
        self.device.setObjectName("clusterDevice")
        self.device.addItems(["cuda", "cpu"])
        self.device.setToolTip("cuda: one GPU per process, nccl; cpu: gloo")
        for narrow in (self.processes, self.nodes, self.device):
            narrow.setMaximumWidth(narrow.sizeHint().width() + 40)
        self.out = QLineEdit(str(Path(runs_dir) / name))
        self.out.setObjectName("clusterOut")
        self.out.setToolTip("The run folder (--out); on several machines it must be on a shared file system")
        form = QFormLayout()
        form.addRow("Processes per machine", self.processes)
        form.addRow("Machines", self.nodes)
        form.addRow("Rendezvous host", self.host)
        form.addRow("Device", self.device)
        form.addRow("Run folder", self.out)
        self.text = QPlainTextEdit()
        self.text.setObjectName("clusterCommands")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.copied = QLabel()
        copy_row = buttons_row(("Copy", self.copy))
        copy_row.addWidget(self.copied)
        layout = QVBoxLayout(self)
        layout.addWidget(saved)
        layout.addLayout(form)
        layout.addWidget(self.text, 1)
        layout.addLayout(copy_row)
        layout.addWidget(button_box(self, Buttons.Close))
        for spin in (self.processes, self.nodes):
            spin.valueChanged.connect(self.update_text)
        for field in (self.host, self.out):
            field.textChanged.connect(self.update_text)
        self.device.currentTextChanged.connect(self.update_text)
        self.update_text()
        self._fit_text()

    def _fit_text(self) -> None:
        """Wide enough for the longest line (up to most of the screen), tall enough for all of them."""
        metrics, lines = self.text.fontMetrics(), self.text.toPlainText().splitlines()
        screen = (self.screen() or QGuiApplication.primaryScreen()).availableGeometry()
        width = max(metrics.horizontalAdvance(line) for line in lines) + 40
        self.text.setMinimumSize(min(max(width, 640), int(screen.width() * 0.85)),
                                 min(metrics.lineSpacing() * (len(lines) + 2), int(screen.height() * 0.5)))

    def _spin(self, name: str, low: int, high: int, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    def commands(self) -> list[tuple[str, str]]:
        return cluster_commands(self.recipe_path, self.out.text().strip() or self.name, self.processes.value(),
                                self.nodes.value(), self.host.text().strip() or "HOST", self.name,
                                self.device.currentText(),
                                RunOptions(arch=self.options.get("arch"), trust=bool(self.options.get("trust")),
                                           replace_head=bool(self.options.get("replace_head"))))

    def update_text(self) -> None:
        self.text.setPlainText(cluster_text(self.commands()))
        self.copied.clear()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())
        self.copied.setText("Copied.")


def open_cluster_command(parent, recipe: Recipe, model: str | None, data: str | None, runs_dir: str, nproc: int,
                         options: dict | None = None, path: str | None = None) -> ClusterCommandDialog | None:
    """Save the recipe (with the model and data) where the user says, then show its commands (not modal)."""
    if path is None:
        default = str(Path(runs_dir) / "recipe.yaml")
        path = QFileDialog.getSaveFileName(parent, "Save the recipe for the cluster", default,
                                           "Recipes (*.yaml *.yml *.json)")[0]
        if not path:
            return None
    recipe = with_model_and_data(recipe, model, data)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        recipe.save(path)
    except OSError as exc:
        errors.show_error(parent, "Cannot save the recipe", f"{path}: {exc.strerror or exc}")
        return None
    run_options = {k: v for k, v in (options or {}).items() if k in ("arch", "trust", "replace_head")}
    dialog = ClusterCommandDialog(str(Path(path).resolve()), run_name(recipe, path), runs_dir, nproc, run_options,
                                  parent)
    dialog.show()
    return dialog
