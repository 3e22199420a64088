"""Opening models and data, browsing snapshots and reading layers off the GUI thread, so that the model browser and
the layer inspector follow the AppState. One TaskSlot per purpose: only the latest request of each kind lands."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...core.child_run import load_in_child
from ...core.data import DataSettings, load_data, spec_text
from ...core.errors import ErrorInfo, ErrorKind
from ...core.layer_data import CACHE, layer_arrays, open_model
from ...core.snapshot_tools import snapshot_layers
from ..state import AppState
from .tasks import TaskSlot, run_task


def _layer(source: str, layer: str):
    return layer_arrays(CACHE.get(source), layer)


Data = DataSettings | str | None      # the data settings the panel measures with (a plain spec: its defaults)


def _open(spec: str, data: Data, options: dict) -> dict:
    if options.get("trust"):
        load_in_child(spec, data, options.get("arch"), True, TRUSTED_LOAD_SECONDS, bool(options.get("replace_head")))
    return with_baseline(open_model(spec, data, **options), spec)


def _snapshot(path: str, data: Data) -> dict:
    return with_baseline(open_model(path, data), path)


def baseline_path(spec: str) -> Path | None:
    """The baseline snapshot (00-baseline) of the run a snapshot folder belongs to; None for anything else and for
    the baseline itself."""
    path = Path(spec)
    if path.parent.name != "snapshots" or not (path / "snapshot.json").is_file():
        return None
    base = next(iter(sorted(path.parent.glob("00-*"))), None)
    return base if base is not None and base.resolve() != path.resolve() else None


def with_baseline(info: dict, spec: str) -> dict:
    """The model's measurements plus, for a snapshot of a run, its baseline's layers ({name: {"params", "shape"}})."""
    base = baseline_path(spec)
    if base is None:
        return info
    try:
        layers = snapshot_layers(base)
    except Exception:  # noqa: BLE001 - an unreadable baseline: the snapshot is shown without the comparison
        return info
    return {**info, "baseline": {n: {"params": v.get("params"), "shape": v.get("shape")} for n, v in layers.items()}}


TRUSTED_LOAD_SECONDS = 120.0


class ModelControl(QObject):
    """`status(text)` for the status bar's model label, `notice(text, ms)` for a passing message, `failed(title,
    message, details)` for the window to show. `data_settings()` gives the data settings to measure with, the ones
    runs get (the window sets it to the recipe's `data:` with the open data's spec); `settings_changed()` measures
    the open model again when they changed."""

    status = Signal(str)
    notice = Signal(str, int)
    failed = Signal(str, str, str)
    needsTrust = Signal(str, str, object)   # spec, why it was refused, the options it was opened with
    needsHead = Signal(str, object, object)  # spec, (classifier layer, its classes, the data's), the options it was opened with
    layersShown = Signal(object, str)       # the measurements the browser now shows (with "baseline" for a snapshot), a title

    def __init__(self, state: AppState, browser, inspector, parent=None) -> None:
        super().__init__(parent)
        self.state, self.browser, self.inspector = state, browser, inspector
        self.models, self.snapshots, self.layers = TaskSlot(), TaskSlot(), TaskSlot()
        self.data_settings: Callable[[], Data] = lambda: self.state.data_spec
        self.requested: tuple[str, dict, Data] | None = None   # the model being opened, and on what data
        self.measured: Data = None                             # the data the open model was measured on
        state.layerChanged.connect(self.load_layer)
        state.snapshotChanged.connect(self._browse)

    # --- the current model and the data -------------------------------------------------------------
    def open_model(self, spec: str, arch: str | None = None, trust: bool = False, replace_head: bool = False) -> None:
        """Load and measure off the GUI thread; the tree fills in when it is done. A trusted file is loaded in a
        child process first, bounded in time, since its code may hang or exhaust memory. `replace_head`: the
        user's checkpoint's classifier for another class count is replaced (only ever after the user said so)."""
        options = {"arch": arch or None, "trust": bool(trust), **({"replace_head": True} if replace_head else {})}
        data = self.data_settings()
        self.requested = (spec, options, data)
        self.browser.set_loading(spec)
        self.status.emit(f"model: {spec} (loading{', trusted' if trust else ''}…)")
        self.models.submit(_open, spec, data, options, on_done=lambda info: self._opened(spec, info, options, data),
                           on_error=lambda error: self._failed(spec, error, options))

    def settings_changed(self) -> None:
        """The data settings may have changed (Open data, a recipe opened, an undo): the model open (or opening) is
        measured again if they did, so the panel always shows what a run would measure."""
        if self.requested is not None:
            spec, options, data = self.requested
        elif self.state.model_spec:
            spec, options, data = self.state.model_spec, self.state.model_options, self.measured
        else:
            return
        if data != self.data_settings():
            self.open_model(spec, **options)

    def _opened(self, spec: str, info: dict, options: dict, data: Data = None) -> None:
        self.requested, self.measured = None, data
        self.snapshots.cancel()   # a snapshot still loading would cover the model just opened
        self.browser.show_info(info)
        self.layersShown.emit(info, f"the current model, {spec}")
        self.status.emit(f"model: {spec}")
        self.state.set_model(spec, info, options)
        names = self.state.layer_names()
        layer = self.state.layer if self.state.layer in names else next(iter(names), "")
        again = layer == self.state.layer and not self.state.snapshot   # the same layer of a new model
        self.state.set_layer(layer)   # another layer loads through layerChanged
        if layer:
            self.browser.select_layer(layer)
        if again:
            self.load_layer()

    def _failed(self, spec: str, error: ErrorInfo, options: dict) -> None:
        self.requested = None
        message = error.message
        self.status.emit(f"model: {self.state.model_spec or 'none'}")
        if error.head is not None:      # typed (HeadMismatch), never the CLI's text about --replace-head
            layer, have, want = error.head
            message = f"{Path(spec).name}: its classifier {layer} has {have} classes, the data has {want}"
        if self.state.model_spec and self.browser.info:
            self.browser.show_info(self.browser.info)   # the model that was open stays open
        else:
            self.browser.set_failed(spec, message)
        if error.kind is ErrorKind.NEEDS_TRUST and not options.get("trust"):
            self.needsTrust.emit(spec, error.reason, options)   # the window asks; only an explicit yes loads it
        elif error.head is not None and not options.get("replace_head"):
            self.needsHead.emit(spec, error.head, options)      # the window asks; only "Replace head" replaces it
        else:
            self.failed.emit("Cannot open model", message, error.details)

    def set_data(self, data: DataSettings | str, model: str | None = None) -> None:
        """Check the data (a spec, or the settings chosen in Open data) off the GUI thread; keep the current data if
        it does not load. With `model`, that model is opened on the new data (else the current one is measured
        again if the data settings changed)."""
        spec = spec_text(data)
        self.notice.emit(f"Loading data {spec}…", 0)
        run_task(load_data, data, on_done=lambda _bundle: self._data_loaded(spec, model),
                 on_error=lambda e: self.failed.emit("Cannot open data", e.message, e.details))

    def _data_loaded(self, spec: str, model: str | None = None) -> None:
        CACHE.clear()
        self.state.set_data(spec)      # the window writes the chosen settings into the recipe here
        self.notice.emit(f"Data: {spec}", 5000)
        if model:
            self.open_model(model)
        else:
            self.settings_changed()    # measured again on the new data

    # --- what the browser and the inspector show ------------------------------------------------------
    def _browse(self, path: str) -> None:
        """The browser and the inspector show the selected snapshot (no selection: the current model)."""
        self.load_layer()
        self.snapshots.cancel()
        if not path:
            if self.state.model_info:
                self.browser.show_info(self.state.model_info)
                self.browser.select_layer(self.state.layer)
                self.layersShown.emit(self.state.model_info, f"the current model, {self.state.model_spec}")
            return
        label = f"snapshot {Path(path).parent.parent.name}/{Path(path).name}"
        self.snapshots.submit(_snapshot, path, self.data_settings(), on_done=lambda info: self._show_snapshot(info, label),
                              on_error=lambda e: self.notice.emit(f"Cannot read {path}: {e.message}", 8000))

    def _show_snapshot(self, info: dict, label: str) -> None:
        self.browser.show_info(info, label)
        self.browser.select_layer(self.state.layer)
        self.layersShown.emit(info, label + (" against its run's baseline" if info.get("baseline") else ""))

    def load_layer(self, *_args) -> None:
        source, layer = self.state.inspect_source, self.state.layer
        if not source or not layer:
            return
        label = Path(source).name if Path(source).exists() else source
        self.inspector.set_loading(layer, label)
        self.layers.submit(_layer, source, layer, on_done=lambda arrays: self.inspector.show_arrays(arrays, label),
                           on_error=lambda e: self.inspector.set_failed(layer, e.message))
