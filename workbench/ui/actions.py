"""The window's actions (with shortcuts and standard icons), menus, toolbar and status bar labels."""
from __future__ import annotations

import os
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QDockWidget, QLabel, QMenu, QSpinBox, QStyle, QToolBar

from ..core.resources import ready_made_recipes
from . import settings
from .pipeline.runtime_choice import RuntimeChoice

SP = QStyle.StandardPixmap
KS = QKeySequence.StandardKey

# name: (text, icon, shortcut, tip, slot method on the window)
ACTIONS: dict[str, tuple[str, QStyle.StandardPixmap, str | QKeySequence.StandardKey | None, str, str]] = {
    "open_model": ("Open model…", SP.SP_DirOpenIcon, KS.Open, "Open a sample, torchvision, architecture, file or snapshot",
                   "open_model_dialog"),
    "open_data": ("Open data…", SP.SP_DriveHDIcon, "Ctrl+Shift+O", "Choose the data set", "open_data_dialog"),
    "run": ("Run", SP.SP_MediaPlay, "F5", "Run the recipe on the current model (F5)", "start_run"),
    "stop": ("Stop", SP.SP_MediaStop, "Shift+F5", "Stop the running stage; the last snapshot is kept", "stop_run"),
    "cluster_command": ("Cluster command…", SP.SP_ComputerIcon, None,
                        "Save the recipe and show the torchrun commands that run it on several GPUs or machines",
                        "cluster_command_dialog"),
    "export": ("Export…", SP.SP_DialogSaveButton, "Ctrl+E", "Export the selected snapshot (or the current model)",
               "export_dialog"),
    "open_recipe": ("Open recipe…", SP.SP_FileIcon, "Ctrl+Shift+R", "Open a recipe (YAML or JSON)", "open_recipe_dialog"),
    "save_recipe": ("Save recipe", SP.SP_DialogSaveButton, KS.Save, "Save the recipe", "save_recipe"),
    "save_recipe_as": ("Save recipe as…", SP.SP_DialogSaveButton, KS.SaveAs, "Save the recipe under a new name",
                       "save_recipe_as"),
    "runs_dir": ("Runs folder…", SP.SP_DirIcon, None, "Where runs and snapshots are written", "choose_runs_dir"),
    "export_report": ("Export report…", SP.SP_FileDialogDetailedView, None,
                      "Write one self-contained HTML report of the selected run(s), or of the latest run", "export_report_dialog"),
    "export_plots": ("Export plots as PNG…", SP.SP_DesktopIcon, None, "Write every plot to a folder as PNG",
                     "export_plots_dialog"),
    "reset_layout": ("Reset layout", SP.SP_BrowserReload, None, "Put the panels back where they started", "reset_layout"),
    "quit": ("Quit", SP.SP_DialogCloseButton, "Ctrl+Q", "Quit", "close"),
    "shortcuts": ("Keyboard shortcuts", SP.SP_DialogHelpButton, "F1", "List the keyboard shortcuts", "show_shortcuts"),
}


def build_actions(window) -> dict[str, QAction]:
    out = {}
    for name, (text, icon, key, tip, slot) in ACTIONS.items():
        act = QAction(window.style().standardIcon(icon), text, window)
        act.setObjectName(f"action_{name}")
        if key is not None:
            act.setShortcut(QKeySequence(key))
        act.setToolTip(tip)
        act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False, s=slot: getattr(window, s)())
        out[name] = act
    undo = window.doc.undo_stack.createUndoAction(window, "Undo")
    undo.setShortcut(QKeySequence("Ctrl+Z"))
    undo.setIcon(window.style().standardIcon(SP.SP_ArrowBack))
    redo = window.doc.undo_stack.createRedoAction(window, "Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    redo.setIcon(window.style().standardIcon(SP.SP_ArrowForward))
    out["undo"], out["redo"] = undo, redo
    return out


def build_menus(window, acts: dict[str, QAction], docks: Iterable[QDockWidget] = ()) -> dict[str, QMenu]:
    """File, Edit, Run, View (a toggle for each dock, then Reset layout) and Help."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    recent_models = QMenu("Recent models", window)
    recent_recipes = QMenu("Recent recipes", window)
    ready = QMenu("Ready-made recipes", window)
    for item in ("open_model", recent_models, "open_data", None, "open_recipe", recent_recipes, ready, "save_recipe",
                 "save_recipe_as", None, "export", "export_report", "export_plots", "runs_dir", None, "quit"):
        if item is None:
            file_menu.addSeparator()
        elif isinstance(item, QMenu):
            file_menu.addMenu(item)
        else:
            file_menu.addAction(acts[item])
    edit = bar.addMenu("&Edit")
    edit.addAction(acts["undo"])
    edit.addAction(acts["redo"])
    run = bar.addMenu("&Run")
    run.addAction(acts["run"])
    run.addAction(acts["stop"])
    run.addSeparator()
    run.addAction(acts["cluster_command"])
    view = bar.addMenu("&View")
    for dock in docks:
        view.addAction(dock.toggleViewAction())
    view.addSeparator()
    view.addAction(acts["reset_layout"])
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(acts["shortcuts"])
    return {"file": file_menu, "recent_models": recent_models, "recent_recipes": recent_recipes, "ready": ready,
            "view": view}


def fill_recent(menu: QMenu, items: list[str], open_fn) -> None:
    menu.clear()
    for item in items:
        act = menu.addAction(item)
        act.triggered.connect(lambda _checked=False, v=item: open_fn(v))
    menu.setEnabled(bool(items))


def fill_ready_made(menu: QMenu, open_fn) -> None:
    menu.clear()
    files = list(ready_made_recipes().values())
    for path in files:
        act = menu.addAction(path.stem.replace("_", " "))
        act.setToolTip(str(path))
        act.triggered.connect(lambda _checked=False, p=str(path): open_fn(p))
    menu.setEnabled(bool(files))


PROCESSES_TIP = ("Processes of a run. More than 1 runs the training loops data-parallel under torchrun (each process "
                 "takes a share of every batch): gloo on the CPU, one GPU per process with nccl on CUDA. Run ▸ Cluster "
                 "command… gives the command for several machines.")


def gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no torch CUDA support: cpu only
        return 0


def build_toolbar(window, acts: dict[str, QAction]) -> tuple[QToolBar, QComboBox, QSpinBox, RuntimeChoice]:
    """The toolbar, with the device, the deploy runtime (the recipe's `runtime:`) and the process count (restored
    from the settings) at its end."""
    bar = QToolBar("Main")
    bar.setObjectName("mainToolbar")
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for name in ("open_model", "open_data", None, "run", "stop", None, "export", None, "undo", "redo"):
        if name is None:
            bar.addSeparator()
        else:
            bar.addAction(acts[name])
    bar.addSeparator()
    bar.addWidget(QLabel(" Device "))
    device = QComboBox()
    device.setObjectName("deviceCombo")
    device.addItem("cpu")
    if gpu_count():
        device.addItem("cuda")
    bar.addWidget(device)
    runtime = RuntimeChoice(window.doc)
    label = QLabel("  Runtime ")
    label.setToolTip(runtime.toolTip())
    bar.addWidget(label)
    bar.addWidget(runtime)
    label = QLabel("  Processes ")
    label.setToolTip(PROCESSES_TIP)
    bar.addWidget(label)
    processes = QSpinBox()
    processes.setObjectName("processCount")
    processes.setRange(1, max(8, os.cpu_count() or 1, gpu_count()))
    processes.setToolTip(PROCESSES_TIP)
    processes.setAccessibleName("Processes")
    try:
        processes.setValue(int(settings.value("processes", 1)))
    except (TypeError, ValueError):
        pass
    bar.addWidget(processes)
    return bar, device, processes, runtime


def build_status_bar(window, device: QComboBox, processes: QSpinBox | None = None) -> tuple[QLabel, QLabel, QLabel]:
    """The permanent labels: the model, the device and process count (following the toolbar, set to the last ones
    used), the stage."""
    model, device_label, stage = QLabel(), QLabel(), QLabel("idle")
    for w in (model, device_label, stage):
        window.statusBar().addPermanentWidget(w)

    def show(*_args) -> None:
        count = processes.value() if processes is not None else 1
        device_label.setText(f"device: {device.currentText()}" + (f" × {count} processes" if count > 1 else ""))
    device.currentTextChanged.connect(show)
    if processes is not None:
        processes.valueChanged.connect(show)
    device.setCurrentText(str(settings.value("device", "cpu")))
    show()
    return model, device_label, stage


def shortcuts_text(acts: dict[str, QAction], pipeline: dict[str, QAction] | None = None) -> str:
    """Every action with a shortcut, one per line, for Help ▸ Keyboard shortcuts (F1): the window's, then the
    pipeline editor's (those work while the pipeline panel has the focus)."""
    def lines(actions, tip: bool = False) -> list[str]:
        return [f"{', '.join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts())}:  "
                f"{a.toolTip() if tip else a.text().replace('&', '').rstrip('…')}" for a in actions if a.shortcuts()]
    out = lines(acts.values())
    if pipeline:
        out += ["", "In the Pipeline panel:"] + lines(pipeline.values(), tip=True)
    return "\n".join(out)
