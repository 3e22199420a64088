"""The main window: dockable panels around the plots, toolbar, menus, status bar, remembered layout."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow

from ..core.data import load_data
from ..core.errors import RecipeError
from ..core.layer_data import CACHE, layer_arrays, open_model
from ..core.snapshot_tools import compare_snapshots
from . import settings
from .dialogs import errors
from .actions import build_actions, build_menus, build_toolbar, fill_ready_made, fill_recent
from .widgets.layer_view import LayerInspector
from .widgets.model_browser import ModelBrowser
from .dialogs.open_data import OpenDataDialog
from .dialogs.open_model import OpenModelDialog, dropped_spec
from .pipeline.pipeline_editor import PipelineEditor
from .widgets.plots import PlotsPanel
from .pipeline.recipe_doc import RecipeDocument
from .pipeline.recipe_files import RecipeFiles
from .qthreading.run_control import RunControl
from .widgets.run_panel import RunPanel
from .widgets.runs_view import RunsView
from .dialogs.compare import CompareDialog
from .dialogs.export import ExportDialog
from .qthreading.tasks import run_task

LAYOUT_VERSION = 1


def _layer(source: str, layer: str):
    return layer_arrays(CACHE.get(source), layer)


class MainWindow(RecipeFiles, QMainWindow):
    def __init__(self, model: str | None = None, data: str | None = None, recipe: str | None = None,
                 runs_dir: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Workbench")
        self.setAcceptDrops(True)
        self.resize(1500, 940)
        self.model_spec: str | None = None
        self.data_spec: str | None = data or settings.value("data", "sample:digits")
        self.runs_dir = runs_dir or settings.value("runs_dir", str(Path.cwd() / "runs"))
        self.inspect_source = ""
        self.current_layer = ""
        self._layer_token = 0
        self._model_token = 0
        self._browse_token = 0
        self.model_info: dict | None = None   # the current model's measurements (the browser may show a snapshot)
        self.doc = RecipeDocument(self)
        self.browser, self.inspector = ModelBrowser(), LayerInspector()
        self.editor, self.plots = PipelineEditor(self.doc), PlotsPanel()
        self.runs, self.run_panel = RunsView(), RunPanel()
        self.control = RunControl(self)
        self.control.listeners += [self.run_panel.handle, self.plots.handle]
        self.setCentralWidget(self.plots)
        self.docks = {}
        for key, title, widget, area in (
                ("browser", "Model", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("inspector", "Layer inspector", self.inspector, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("pipeline", "Pipeline", self.editor, Qt.DockWidgetArea.RightDockWidgetArea),
                ("runs", "Runs and snapshots", self.runs, Qt.DockWidgetArea.BottomDockWidgetArea),
                ("progress", "Progress and log", self.run_panel, Qt.DockWidgetArea.BottomDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{key}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[key] = dock
        self.resizeDocks([self.docks["browser"], self.docks["pipeline"]], [580, 440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["runs"]], [230], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["browser"], self.docks["inspector"]], [360, 420], Qt.Orientation.Vertical)
        self._default_state = self.saveState(LAYOUT_VERSION)
        self.acts = build_actions(self)
        self.menus = build_menus(self, self.acts)
        for dock in self.docks.values():
            self.menus["view"].addAction(dock.toggleViewAction())
        self.menus["view"].addSeparator()
        self.menus["view"].addAction(self.acts["reset_layout"])
        self.plots.export_button.setDefaultAction(self.acts["export_plots"])
        self.toolbar, self.device_combo = build_toolbar(self, self.acts)
        self.addToolBar(self.toolbar)
        self.status_device, self.status_model, self.status_stage = QLabel(), QLabel(), QLabel("idle")
        for w in (self.status_model, self.status_device, self.status_stage):
            self.statusBar().addPermanentWidget(w)
        self.device_combo.currentTextChanged.connect(lambda d: self.status_device.setText(f"device: {d}"))
        self.device_combo.setCurrentText(str(settings.value("device", "cpu")))
        self.status_device.setText(f"device: {self.device_combo.currentText()}")
        self._connect()
        self._refresh_menus()
        self._restore()
        self._set_running(False)
        self.runs.load_dir(self.runs_dir)
        self._initial(model, recipe)

    # --- wiring -----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.browser.layerSelected.connect(self.select_layer)
        self.runs.snapshotSelected.connect(self.select_snapshot)
        self.runs.pointsChanged.connect(self.plots.set_points)
        self.runs.forkRequested.connect(self.fork)
        self.runs.exportRequested.connect(self.export_dialog)
        self.runs.compareRequested.connect(self.compare)
        self.plots.snapshotClicked.connect(self.runs.select)
        self.control.stateChanged.connect(self._set_running)
        self.control.stageChanged.connect(lambda text: self.status_stage.setText(f"stage: {text}"))
        self.control.runStarted.connect(lambda d, title: self.runs.add_run(d, title))
        self.control.snapshotSaved.connect(lambda d, row: self.runs.add_snapshot(d, row))
        self.control.runEnded.connect(self._run_ended)
        self.control.failed.connect(self.show_error)
        self.doc.undo_stack.cleanChanged.connect(self._clean_changed)

    def _initial(self, model: str | None, recipe: str | None) -> None:
        if recipe:
            self.open_recipe(recipe)
        elif settings.value("recipe") and Path(str(settings.value("recipe"))).exists():
            self.open_recipe(str(settings.value("recipe")), quiet=True)
        else:
            self.doc.replace({"top": {"name": "quick", "seed": 0}, "stages": []})
            self.doc.add_stage("train")
            self.doc.set_value(0, "epochs", 1)
            self.doc.add_stage("export")
            self.doc.undo_stack.clear()
        start = model or self.doc.state["top"].get("model") or settings.value("model", "sample:digits_mlp")
        self.open_model(str(start))

    # --- models and data -----------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        dialog = OpenModelDialog(self, settings.recent("models"), str(Path(self.runs_dir)))
        if dialog.exec() and dialog.spec():
            self.open_model(dialog.spec())

    def open_model(self, spec: str) -> None:
        """Load and measure off the GUI thread; the tree fills in when it is done."""
        self._model_token += 1
        token = self._model_token
        self.browser.set_loading(spec)
        self.status_model.setText(f"model: {spec} (loading…)")
        run_task(open_model, spec, self.data_spec,
                 on_done=lambda info: self._model_opened(token, spec, info),
                 on_error=lambda msg, details: self._model_failed(token, spec, msg, details))

    def _model_opened(self, token: int, spec: str, info: dict) -> None:
        if token != self._model_token:
            return
        self.model_spec, self.model_info = spec, info
        self._browse_token += 1
        self.browser.show_info(info)
        self.editor.set_layer_names(self.browser.layer_names())
        self.status_model.setText(f"model: {spec}")
        settings.set_value("model", spec)
        settings.add_recent("models", spec)
        self._refresh_menus()
        if self.current_layer not in self.browser.layer_names():
            self.current_layer = next(iter(self.browser.layer_names()), "")
        if self.current_layer:
            self.browser.select_layer(self.current_layer)
        if not self.runs.selected_paths():
            self.inspect_source = spec
            self._load_layer()

    def _model_failed(self, token: int, spec: str, message: str, details: str) -> None:
        if token != self._model_token:
            return
        self.status_model.setText(f"model: {self.model_spec or 'none'}")
        if self.model_spec and self.browser.info:
            self.browser.show_info(self.browser.info)   # the model that was open stays open
        else:
            self.browser.set_failed(spec, message)
        errors.show_error(self, "Cannot open model", message, details)

    def open_data_dialog(self) -> None:
        dialog = OpenDataDialog(self, self.data_spec or "", settings.recent("data"))
        if dialog.exec() and dialog.spec():
            self.set_data(dialog.spec())

    def set_data(self, spec: str) -> None:
        """Check the data spec off the GUI thread; keep the current data if it does not load."""
        self.statusBar().showMessage(f"Loading data {spec}…")
        run_task(load_data, spec, on_done=lambda _bundle: self._data_loaded(spec),
                 on_error=lambda msg, details: errors.show_error(self, "Cannot open data", msg, details))

    def _data_loaded(self, spec: str) -> None:
        self.data_spec = spec
        settings.set_value("data", spec)
        settings.add_recent("data", spec)
        CACHE.clear()
        self.statusBar().showMessage(f"Data: {spec}", 5000)
        if self.model_spec:
            self.open_model(self.model_spec)
        self._update_title()

    def fork(self, snapshot: str) -> None:
        """The snapshot becomes the current model; the pipeline is kept for editing."""
        self.open_model(snapshot)
        self.statusBar().showMessage(f"Forked from {snapshot}: runs now start from this snapshot.", 8000)

    # --- layer inspector -------------------------------------------------------------------------------
    def select_layer(self, name: str) -> None:
        self.current_layer = name
        self._load_layer()

    def select_snapshot(self, path: str) -> None:
        """The browser and the inspector show the selected snapshot (no selection: the current model)."""
        self.inspect_source = path or (self.model_spec or "")
        self.plots.select_point(path or None)
        self._load_layer()
        self._browse_token += 1
        token = self._browse_token
        if not path:
            if self.model_info:
                self.browser.show_info(self.model_info)
                self.browser.select_layer(self.current_layer)
            return
        label = f"snapshot {Path(path).parent.parent.name}/{Path(path).name}"
        run_task(open_model, path, self.data_spec,
                 on_done=lambda info: token == self._browse_token and self._show_snapshot(info, label),
                 on_error=lambda msg, _d: self.statusBar().showMessage(f"Cannot read {path}: {msg}", 8000))

    def _show_snapshot(self, info: dict, label: str) -> None:
        self.browser.show_info(info, label)
        self.browser.select_layer(self.current_layer)

    def _load_layer(self) -> None:
        source, layer = self.inspect_source or self.model_spec, self.current_layer
        if not source or not layer:
            return
        self._layer_token += 1
        token = self._layer_token
        label = Path(source).name if Path(source).exists() else source
        self.inspector.set_loading(layer, label)
        run_task(_layer, source, layer,
                 on_done=lambda arrays: token == self._layer_token and self.inspector.show_arrays(arrays, label),
                 on_error=lambda msg, _d: token == self._layer_token and self.inspector.set_failed(layer, msg))

    # --- runs --------------------------------------------------------------------------------------------
    def start_run(self) -> bool:
        if self.control.running():
            return False
        try:
            recipe = self.doc.recipe()
        except RecipeError as exc:
            errors.show_error(self, "Fix the recipe first", f"The recipe is not valid: {exc.message}",
                              "\n".join(self.doc.all_errors()))
            return False
        model = self.model_spec or recipe.model
        if not model:
            errors.show_error(self, "No model", "Open a model first (File ▸ Open model…).")
            return False
        self.plots.clear_run()
        self.run_panel.start(sum(1 for s in recipe.stages if s.enabled), recipe.name or "run")
        self.docks["progress"].raise_()
        settings.set_value("device", self.device_combo.currentText())
        return self.control.start(recipe, model, self.data_spec, self.runs_dir, self.device_combo.currentText())

    def stop_run(self) -> None:
        self.control.stop()

    def _set_running(self, running: bool) -> None:
        self.acts["run"].setEnabled(not running)
        self.acts["stop"].setEnabled(running)
        self.device_combo.setEnabled(not running)

    def _run_ended(self, run_dir: str, ok: bool, status: str) -> None:
        self.runs.set_run_title(run_dir, f"{Path(run_dir).name} ({status})")
        self.statusBar().showMessage(f"Run {status}: {run_dir}", 10000)

    def choose_runs_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", self.runs_dir)
        if folder:
            self.runs_dir = folder
            settings.set_value("runs_dir", folder)
            self.runs.load_dir(folder)

    # --- snapshots ------------------------------------------------------------------------------------
    def export_dialog(self, spec: str | None = None) -> ExportDialog | None:
        spec = spec or next(iter(self.runs.selected_paths()), None) or self.model_spec
        if not spec:
            errors.show_error(self, "Nothing to export", "Open a model or select a snapshot first.")
            return None
        self._export = ExportDialog(spec, self.data_spec, str(Path(self.runs_dir) / "exports"), self)
        self._export.show()
        return self._export

    def compare(self, a: str, b: str) -> CompareDialog | None:
        try:
            result = compare_snapshots(a, b)
        except Exception as exc:  # noqa: BLE001 - unreadable snapshot.json: a message, not a crash
            errors.show_error(self, "Cannot compare", str(exc))
            return None
        self._compare = CompareDialog(result, self)
        self._compare.show()
        return self._compare

    def export_plots_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export plots as PNG into…")
        if folder:
            paths = self.plots.export_all(folder)
            self.statusBar().showMessage(f"Wrote {len(paths)} PNG files to {folder}", 8000)

    def show_error(self, title: str, message: str, details: str = "") -> None:
        errors.show_error(self, title, message, details)

    # --- window state ----------------------------------------------------------------------------------
    def _clean_changed(self, _clean: bool) -> None:
        try:
            self._update_title()
        except RuntimeError:  # the undo stack is being destroyed with the window
            pass

    def _update_title(self) -> None:
        name = Path(self.doc.path).name if self.doc.path else "untitled recipe"
        dirty = "" if self.doc.undo_stack.isClean() else " •"
        self.setWindowTitle(f"Workbench · {name}{dirty} · data {self.data_spec or 'none'}")

    def _refresh_menus(self) -> None:
        fill_recent(self.menus["recent_models"], settings.recent("models"), self.open_model)
        fill_recent(self.menus["recent_recipes"], settings.recent("recipes"), self.open_recipe)
        fill_ready_made(self.menus["ready"], self.open_recipe)

    def _restore(self) -> None:
        geometry, state = settings.value("window/geometry"), settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    def show_shortcuts(self) -> None:
        lines = [f"{a.text().replace('&', '')}: {a.shortcut().toString()}" for a in self.acts.values()
                 if not a.shortcut().isEmpty()]
        errors.show_info(self, "Keyboard shortcuts", "\n".join(lines))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        recipes = [p for p in paths if p.endswith((".yaml", ".yml", ".json"))]
        if recipes:
            self.open_recipe(recipes[0])
        spec = dropped_spec([p for p in paths if p not in recipes])
        if spec:
            self.open_model(spec)
        elif paths and not recipes:
            errors.show_error(self, "Cannot open", f"{Path(paths[0]).name}: not a model file, snapshot folder or recipe.")
        event.acceptProposedAction()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.control.running():
            if not errors.ask(self, "A run is active", "A run is still going. Stop it and quit? "
                              "The last finished snapshot is kept."):
                event.ignore()
                return
            self.status_stage.setText("stage: stopping…")
            if not self.control.stop_and_wait():
                errors.show_error(self, "Still stopping", "The run did not stop in time; try again in a moment.")
                event.ignore()
                return
        settings.set_value("window/geometry", self.saveGeometry())
        settings.set_value("window/state", self.saveState(LAYOUT_VERSION))
        settings.set_value("runs_dir", self.runs_dir)
        event.accept()
