"""Events that the runner (and each stage generator) yields. Plain frozen data: no tensors, no modules."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ErrorInfo


@dataclass(frozen=True)
class Progress:
    done: float
    total: float
    text: str = ""


@dataclass(frozen=True)
class Metric:
    """A scalar as it evolves, e.g. name="train/loss", step = global step or epoch."""
    name: str
    value: float
    step: float


@dataclass(frozen=True)
class LayerStats:
    """Per-layer numbers, e.g. {"fc1": {"sparsity": 0.9, "params": 19200}}; None where a number does not apply
    (the sparsity of a batch norm, see pruning.layers.layer_stats)."""
    layers: dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class Series:
    """A whole curve, e.g. sensitivity of one layer: x = sparsities, y = accuracies."""
    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    x_label: str = ""
    y_label: str = ""


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    text: str


@dataclass(frozen=True)
class StageStarted:
    index: int          # position in the recipe (0-based)
    kind: str
    total_stages: int


@dataclass(frozen=True)
class SnapshotSaved:
    index: int          # snapshot number (0 = baseline)
    stage: str
    path: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageFailed:
    """A stage that did not finish: it raised (`message`, with `details` for a details button) or was cancelled."""
    index: int
    kind: str
    message: str
    details: str = ""
    cancelled: bool = False


@dataclass
class ExportResult:
    """A file written by an export, read back and compared with the model (`verified`)."""
    format: str
    path: str
    bytes: int
    verified: bool
    max_abs_diff: float | None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    check: str = ""                 # what "verified" meant for this format

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExportWritten:
    result: ExportResult


@dataclass(frozen=True)
class RunFinished:
    """The last event of every run; `ok` is false when a stage failed or the run was cancelled."""
    out_dir: str
    report_path: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class RunError:
    """A run that could not start or went down, as a process that follows it (through an events file) receives it:
    the typed error, never a message to be parsed back."""
    error: ErrorInfo


Event = (Progress | Metric | LayerStats | Series | Log | StageStarted | SnapshotSaved | StageFailed | ExportWritten
         | RunFinished | RunError)


# --- events as JSON lines (a run in another process writes them; the GUI reads them back) -------------
_KINDS = {cls.__name__: cls for cls in (Progress, Metric, LayerStats, Series, Log, StageStarted, SnapshotSaved,
                                        StageFailed, ExportWritten, RunFinished, RunError)}


def to_json(event: Event) -> dict[str, Any]:
    """A plain mapping with the event's class under "event"; `from_json` makes the same event again."""
    if isinstance(event, RunError):
        return {"event": "RunError", "error": event.error.to_json()}
    return {"event": type(event).__name__, **asdict(event)}


def from_json(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = _KINDS[data.pop("event")]
    if cls is ExportWritten:
        return ExportWritten(ExportResult(**data["result"]))
    if cls is RunError:
        return RunError(ErrorInfo.from_json(data["error"]))
    if cls is Series:
        return Series(data["name"], tuple(data["x"]), tuple(data["y"]), data.get("x_label", ""), data.get("y_label", ""))
    return cls(**data)
