"""The main window: assembles the panels, docks, menus, toolbar and status bar around one AppState and connects them."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow

from ..core.data.settings import DataSettings
from ..core.errors import RecipeError
from ..core.run_handle import RunOptions
from ..reporting import build_report
from . import settings
from .actions import build_actions, build_menus, build_status_bar, build_toolbar, fill_ready_made, fill_recent, gpu_count, shortcuts_text
from .dialogs import errors
from .dialogs.cluster_command import ClusterCommandDialog, open_cluster_command
from .dialogs.compare import CompareDialog, open_compare
from .dialogs.export import ExportDialog, open_export
from .dialogs.open_data import OpenDataDialog
from .dialogs.open_model import OpenModelDialog, dropped_spec
from .formatting import one_based
from .layout import arrange, fit_to_screen
from .pipeline.pipeline_editor import PipelineEditor
from .pipeline.recipe_doc import RecipeDocument
from .pipeline.recipe_files import RecipeFiles
from .qthreading.model_control import ModelControl
from .qthreading.run_control import RunControl
from .qthreading.run_history import RunHistory
from .qthreading.tasks import run_task
from .run_from import RunFrom
from .state import AppState
from .widgets.curves import run_from_files, stage_names, stage_titles
from .widgets.layer_view import LayerInspector
from .widgets.model_browser import ModelBrowser
from .widgets.plots import PlotsPanel
from .widgets.run_panel import RunPanel
from .widgets.runs_view import RunsView

LAYOUT_VERSION = 3         # 3: side columns full height on a laptop (layout.py); older saved layouts are not restored
LEFT, RIGHT, BOTTOM = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                       Qt.DockWidgetArea.BottomDockWidgetArea)


class MainWindow(RecipeFiles, RunFrom, QMainWindow):
    def __init__(self, model: str | None = None, data: str | None = None, recipe: str | None = None,
                 runs_dir: str | None = None, arch: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Workbench")
        self.setAcceptDrops(True)
        self.state = AppState(data or settings.value("data", "sample:digits"),
                              runs_dir or settings.value("runs_dir", str(Path.cwd() / "runs")), self)
        self.doc = RecipeDocument(self)
        self.browser, self.inspector = ModelBrowser(), LayerInspector()
        self.editor, self.plots = PipelineEditor(self.doc), PlotsPanel()
        self.runs, self.run_panel = RunsView(), RunPanel()
        self.loader = ModelControl(self.state, self.browser, self.inspector, self)
        self.loader.data_settings = self.data_settings     # the model panel measures with what runs get
        self.control = RunControl(self)
        self.history = RunHistory(self)
        self.titles = stage_titles()
        self._pending_data: DataSettings | None = None   # chosen in Open data, written into the recipe once loaded
        self._closing = False                            # closing waits for the run to stop
        self.control.listeners += [self.run_panel.handle, self.plots.handle]
        self.setCentralWidget(self.plots)
        self.docks = {key: self._dock(key, title, widget, area) for key, title, widget, area in (
            ("browser", "Model", self.browser, LEFT), ("inspector", "Layer inspector", self.inspector, LEFT),
            ("pipeline", "Pipeline", self.editor, RIGHT), ("runs", "Runs and snapshots", self.runs, BOTTOM),
            ("progress", "Progress and log", self.run_panel, BOTTOM))}
        fit_to_screen(self)
        self.acts = build_actions(self)
        self.menus = build_menus(self, self.acts, self.docks.values())
        self.acts["export_plots"].setIconText("Export PNG…")   # the text on the plots panel's button
        self.plots.export_button.setDefaultAction(self.acts["export_plots"])
        self.toolbar, self.device_combo, self.process_count, self.runtime_combo = build_toolbar(self, self.acts)
        self.addToolBar(self.toolbar)
        self.status_model, self.status_device, self.status_stage = build_status_bar(self, self.device_combo, self.process_count)
        self._connect()
        self._refresh_menus()
        settings.restore_window(self, LAYOUT_VERSION)
        self._set_running(False)
        self.runs.load_dir(self.state.runs_dir)
        self.open_start_recipe(recipe)
        self.open_model(*self._start_model(model, arch))

    def _dock(self, key: str, title: str, widget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # --- wiring -----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        state = self.state
        self.browser.layerSelected.connect(state.set_layer)
        self.runs.snapshotSelected.connect(state.set_snapshot)
        self.runs.runsSelected.connect(self._runs_selected)
        self.runs.refreshed.connect(self._runs_refreshed)
        self.history.loaded.connect(self._history_loaded)
        self.history.failed.connect(self.statusBar().showMessage)
        self.runs.failed.connect(self.statusBar().showMessage)
        self.loader.layersShown.connect(self.plots.show_info_layers)
        state.modelChanged.connect(self._model_changed)
        state.dataChanged.connect(self._data_changed)
        state.snapshotChanged.connect(lambda path: self.plots.select_point(path or None))
        state.runsDirChanged.connect(self._runs_dir_changed)
        self.loader.status.connect(self.status_model.setText)
        self.loader.notice.connect(self.statusBar().showMessage)
        self.loader.failed.connect(self.show_error)
        self.loader.needsTrust.connect(self.ask_trust)
        self.loader.needsHead.connect(self.ask_head)
        self.runs.pointsChanged.connect(self.plots.set_points)
        self.runs.forkRequested.connect(self.fork)
        self.runs.exportRequested.connect(self.export_dialog)
        self.runs.compareRequested.connect(self.compare)
        self.plots.snapshotClicked.connect(self.runs.select)
        self.control.stateChanged.connect(self._set_running)
        self.control.stageChanged.connect(lambda text: self.status_stage.setText(f"stage: {text}"))
        self.control.runStarted.connect(lambda d, title: self.runs.add_run(d, title))
        self.control.notStarted.connect(self._not_started)
        self.control.snapshotSaved.connect(lambda d, row: self.runs.add_snapshot(d, row))
        self.control.runEnded.connect(self._run_ended)
        self.control.failed.connect(self.show_error)
        self.doc.undo_stack.cleanChanged.connect(self._clean_changed)
        self.doc.changed.connect(self.loader.settings_changed)   # data settings edited, undone, or a recipe opened

    @property   # the state's model and data, where scripts and tests have always read them
    def model_spec(self) -> str | None:
        return self.state.model_spec

    @property
    def data_spec(self) -> str | None:
        return self.state.data_spec

    @data_spec.setter
    def data_spec(self, spec: str) -> None:
        self.state.set_data(spec)

    def data_settings(self) -> DataSettings | None:
        """The data settings runs, the model panel and exports use: the recipe's `data:` with the open data's spec."""
        return self.doc.data_settings(self.state.data_spec)

    # --- models and data -----------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        dialog = OpenModelDialog(self, settings.recent("models"), str(Path(self.state.runs_dir)))
        if dialog.exec() and dialog.spec():
            self.open_model(dialog.spec(), **dialog.options())

    def open_model(self, spec: str, arch: str | None = None, trust: bool = False, replace_head: bool = False) -> None:
        self.loader.open_model(spec, arch, trust, replace_head)

    def ask_trust(self, spec: str, reason: str, options: dict) -> None:
        """A file that can run code was refused: loading it needs the user's explicit yes."""
        if errors.ask(self, "Trust this file?", f"{Path(spec).name}: {reason}.\n\nTrusting it runs that code now, with "
                      "your permissions: it could read or change any of your files. Load it only if you trust "
                      "where it came from.\n\nTrust and load it?"):
            self.open_model(spec, options.get("arch"), trust=True)

    def _model_changed(self, spec: str) -> None:
        self.editor.set_layer_names(self.state.prunable_layer_names())
        settings.set_value("model", spec)
        settings.remember_model(spec, self.state.model_options)
        self._refresh_menus()

    def open_data_dialog(self) -> OpenDataDialog:
        """The data and its settings, pre-filled from the recipe's `data:` (with the open data's spec)."""
        current = self.doc.data_settings(self.state.data_spec)
        self._data_dialog = dialog = OpenDataDialog(self, current or "", settings.recent("data"),
                                                    settings.remembered_data)
        dialog.accepted.connect(lambda: self.set_data_settings(dialog.settings(), current))
        dialog.open()
        return dialog

    def set_data_settings(self, chosen: DataSettings | None, current: DataSettings | None = None) -> None:
        """The dialog's settings become the recipe's `data:` (what Save recipe keeps and runs get); a new spec is
        loaded first and only then written into the recipe."""
        if chosen is None or chosen == current:
            return
        self._pending_data = chosen
        self.loader.set_data(chosen)     # checked with every setting, then written; the model is measured on them

    def set_data(self, spec: str) -> None:
        self.loader.set_data(spec)

    def _data_changed(self, spec: str) -> None:
        pending, self._pending_data = self._pending_data, None
        self.data_opened(spec, pending if pending is not None and pending.spec == spec else None)   # + remembered
        self._update_title()

    def fork(self, snapshot: str) -> None:
        """The snapshot becomes the current model; the pipeline is kept for editing."""
        self.open_model(snapshot)
        self.statusBar().showMessage(f"Forked from {snapshot}: runs now start from this snapshot.", 8000)

    # --- runs --------------------------------------------------------------------------------------------
    def checked_recipe(self):
        """The editor's recipe, or None after saying what is wrong with it."""
        problems = self.doc.all_errors()      # what the core checks, and the layer names the open model has
        try:
            recipe = self.doc.recipe()
            if problems:
                raise RecipeError(problems[0])
        except RecipeError as exc:
            self.show_error("Fix the recipe first", f"The recipe is not valid: {exc.message}", "\n".join(problems))
            return None
        return recipe

    def start_run(self) -> bool:
        if self.control.running():
            return False
        if (resumed := self.ask_run_from()) is not None and resumed:      # a snapshot selected, or Stop before
            return self.control.running()
        if (recipe := self.checked_recipe()) is None:
            return False
        model = self.state.model_spec or recipe.model
        if not model:
            self.show_error("No model", "Open a model first (File ▸ Open model…).")
            return False
        device, nproc = self.device_combo.currentText(), self.process_count.value()
        if device == "cuda" and nproc > gpu_count():
            self.show_error("Not enough GPUs", f"{nproc} processes on CUDA take one GPU each; this machine has "
                            f"{gpu_count()}. Lower the process count, or run on the CPU.")
            return False
        self.run_panel.start(sum(1 for s in recipe.stages if s.enabled), recipe.name or "run")
        self.docks["progress"].raise_()
        settings.set_value("device", device)
        settings.set_value("processes", nproc)
        options = self.state.model_options if model == self.state.model_spec else {}
        started = self.control.start(recipe, RunOptions(model=model, data=self.state.data_spec, device=device,
                                                        arch=options.get("arch"), trust=bool(options.get("trust")), runtime=recipe.runtime,
                                                        replace_head=bool(options.get("replace_head")), nproc=nproc),
                                  self.state.runs_dir)
        if started:
            self.plots.begin_run(self.control.out_dir, stage_names(recipe.to_dict(), self.titles))
        return started

    def stop_run(self) -> None:
        self.control.stop()

    def _set_running(self, running: bool) -> None:
        self.acts["run"].setEnabled(not running)
        self.acts["stop"].setEnabled(running)
        for choice in (self.device_combo, self.runtime_combo, self.process_count):
            choice.setEnabled(not running)

    def _run_ended(self, run_dir: str, ok: bool, status: str) -> None:
        self.plots.end_run()
        self.note_run_end(run_dir, status)
        self.runs.set_run_title(run_dir, f"{Path(run_dir).name} ({status})")
        self.runs.show_exports(run_dir)              # each exported file with its own test accuracy
        self.statusBar().showMessage(f"Run {status}: {run_dir}", 10000)

    def _not_started(self, run_dir: str, message: str) -> None:
        """The pre-run check refused the run: no row for it, the progress panel back to idle."""
        self.plots.end_run()
        self.plots.forget(run_dir)
        self.runs.remove_run(run_dir)
        self.run_panel.reset(f"Not started: {one_based(message)}")
        self.statusBar().showMessage("The run did not start: " + one_based(message), 10000)

    def _runs_refreshed(self) -> None:
        self.plots.drop_cached()
        self._runs_selected(self.runs.selected_runs())

    def _history_loaded(self, found: list) -> None:
        for files in found:
            self.plots.add_run(run_from_files(files, self.titles))

    def _runs_selected(self, keys: list[str]) -> None:
        """The plots show the selected runs (a run row or any of its snapshots); none selected: the live run."""
        if not keys and self.plots.live is not None:
            keys = [self.plots.live.key]
        self.plots.show_runs(keys)
        self.history.load(self.plots.missing(keys))

    def choose_runs_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", self.state.runs_dir)
        if folder:
            self.state.set_runs_dir(folder)

    def _runs_dir_changed(self, folder: str) -> None:
        settings.set_value("runs_dir", folder)
        self.runs.load_dir(folder)

    # --- snapshots and plots ------------------------------------------------------------------------------
    def export_dialog(self, spec: str | None = None) -> ExportDialog | None:
        spec = spec or next(iter(self.runs.selected_paths()), None) or self.state.model_spec
        options = self.state.model_options if spec == self.state.model_spec else {}
        self._export = open_export(self, spec, self.data_settings(), str(Path(self.state.runs_dir) / "exports"), options)
        return self._export

    def cluster_command_dialog(self, path: str | None = None) -> ClusterCommandDialog | None:
        """Run ▸ Cluster command…: save the recipe (with the current model and data) and show its torchrun commands."""
        recipe = self.checked_recipe()
        if recipe is not None:
            options = self.state.model_options if self.state.model_spec else {}
            self._cluster = open_cluster_command(self, recipe, self.state.model_spec, self.state.data_spec,
                                                 self.state.runs_dir, self.process_count.value(), options, path)
            return self._cluster
        return None

    def compare(self, a: str, b: str) -> CompareDialog | None:
        self._compare = open_compare(self, a, b)
        return self._compare

    def export_plots_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export plots as PNG into…")
        if folder:
            paths = self.plots.export_all(folder)
            self.statusBar().showMessage(f"Wrote {len(paths)} PNG files to {folder}", 8000)

    def export_report_dialog(self, path: str | None = None) -> None:
        """File ▸ Export report…: one HTML file of the selected run(s) (or the latest), with report.md and snapshots.csv."""
        runs = self.report_runs()
        if not runs:
            self.show_error("No run to report", f"There is no run in {self.state.runs_dir} yet.")
            return
        default = Path(runs[0] if len(runs) == 1 else self.state.runs_dir) / "report.html"
        path = path or QFileDialog.getSaveFileName(self, "Export report", str(default), "HTML report (*.html)")[0]
        if path:
            self.statusBar().showMessage(f"Writing the report of {len(runs)} run(s)…")
            self._report_task = run_task(build_report, runs, path, on_error=lambda e: self.show_error("No report", e.message, e.details),
                                         on_done=lambda f: self.statusBar().showMessage(f"Wrote {f.html}, {f.markdown.name} "
                                                                                        f"and {f.csv.name}", 10000))

    def report_runs(self) -> list[str]:
        """The run folders selected in the runs view (a run row, or any of its snapshots), else the latest run."""
        items = self.runs.tree.selectedItems()
        dirs = [d for d, item in self.runs.runs.items() if item in items]
        dirs += [str(Path(p).parents[1]) for p in self.runs.selected_paths()]
        latest = [self.runs.newest] if self.runs.newest else []     # as last read off the GUI thread, or started here
        return list(dict.fromkeys(dirs or latest))

    # --- messages and window state -----------------------------------------------------------------------
    def show_error(self, title: str, message: str, details: str = "") -> None:
        errors.show_error(self, title, message, details)

    def show_shortcuts(self) -> None:
        errors.show_info(self, "Keyboard shortcuts", shortcuts_text(self.acts, self.editor.actions_by_name))

    def _clean_changed(self, _clean: bool) -> None:
        try:
            self._update_title()
        except RuntimeError:  # the undo stack is being destroyed with the window
            pass

    def _update_title(self) -> None:
        name = Path(self.doc.path).name if self.doc.path else "untitled recipe"
        dirty = "" if self.doc.undo_stack.isClean() else " •"
        self.setWindowTitle(f"Workbench · {name}{dirty} · data {self.state.data_spec or 'none'}")

    def _refresh_menus(self) -> None:
        fill_recent(self.menus["recent_models"], settings.recent("models"), self.open_recent_model)
        fill_recent(self.menus["recent_recipes"], settings.recent("recipes"), self.open_recipe)
        fill_ready_made(self.menus["ready"], self.open_recipe)

    def reset_layout(self) -> None:
        arrange(self)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        recipes = [p for p in paths if p.endswith((".yaml", ".yml", ".json"))]
        if recipes:
            self.open_recipe(recipes[0])
        spec = dropped_spec([p for p in paths if p not in recipes])
        if spec:
            self.open_model(spec)
        elif paths and not recipes:
            self.show_error("Cannot open", f"{Path(paths[0]).name}: not a model file, snapshot folder or recipe.")
        event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        """Closing during a run stops it first: the window closes itself once the run has ended (the event loop
        keeps turning meanwhile; nothing waits on the GUI thread)."""
        if not self._closing and not self.maybe_save_recipe():
            event.ignore()
            return
        if self.control.running():
            if not self._closing and not errors.ask(self, "A run is active", "A run is still going. Stop it and "
                                                    "quit? The last finished snapshot is kept."):
                event.ignore()
                return
            if not self._closing:
                self._closing = True
                self.status_stage.setText("stage: stopping… (the window closes when the run has ended)")
                self.control.idle.connect(self.close, Qt.ConnectionType.QueuedConnection)
                self.control.stop()
            event.ignore()
            return
        settings.save_window(self, LAYOUT_VERSION)
        settings.set_value("runs_dir", self.state.runs_dir)
        event.accept()
