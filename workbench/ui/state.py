"""What the window is looking at, in one place: the current model and its measurements, the data, the selected
layer and snapshot, the runs folder. Each setter emits a signal; the panels and the window subscribe to them.

Selecting the same layer or snapshot again changes nothing; opening a model, data or a runs folder always
emits, since choosing one again means reading it again."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class AppState(QObject):
    modelChanged = Signal(str)      # the current model's spec; its measurements are in `model_info`
    dataChanged = Signal(str)       # the data spec
    layerChanged = Signal(str)      # the selected layer ("" = none)
    snapshotChanged = Signal(str)   # the selected snapshot folder ("" = none: the current model)
    runsDirChanged = Signal(str)    # where runs and snapshots are written

    def __init__(self, data_spec: str | None = None, runs_dir: str = "", parent=None) -> None:
        super().__init__(parent)
        self.model_spec: str | None = None
        self.model_info: dict | None = None   # the current model's measurements (the browser may show a snapshot)
        self.model_options: dict = {}         # how it was loaded: {"arch": ..., "trust": ...} (files only)
        self.data_spec = data_spec
        self.layer = ""
        self.snapshot = ""
        self.runs_dir = runs_dir

    @property
    def inspect_source(self) -> str:
        """What the browser and the layer inspector read: the selected snapshot, else the current model."""
        return self.snapshot or self.model_spec or ""

    def layer_names(self) -> list[str]:
        """The current model's layers with weights."""
        return [r["name"] for r in self.model_info["layers"]] if self.model_info else []

    def prunable_layer_names(self) -> list[str]:
        """The current model's layers with prunable weights (Linear and convolution): what layer settings name."""
        return [r["name"] for r in self.model_info["layers"] if r.get("sparsity") is not None] if self.model_info else []

    def set_model(self, spec: str, info: dict, options: dict | None = None) -> None:
        self.model_spec, self.model_info, self.model_options = spec, info, dict(options or {})
        self.modelChanged.emit(spec)

    def set_data(self, spec: str) -> None:
        self.data_spec = spec
        self.dataChanged.emit(spec)

    def set_layer(self, name: str) -> None:
        if name != self.layer:
            self.layer = name
            self.layerChanged.emit(name)

    def set_snapshot(self, path: str) -> None:
        if path != self.snapshot:
            self.snapshot = path
            self.snapshotChanged.emit(path)

    def set_runs_dir(self, folder: str) -> None:
        self.runs_dir = folder
        self.runsDirChanged.emit(folder)
