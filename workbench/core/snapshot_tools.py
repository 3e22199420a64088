"""Snapshots as the runs view uses them: compare two snapshots, export one.

Plain data in, plain data out (dicts of numbers and paths), so a GUI or a script can use them. Run folders are
read through `run_folder.read_run` / `list_runs` only.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import DataSettings, load_data
from .errors import BadInput, WorkbenchError
from .events import ExportResult
from .export import ExportSource, export_model, get_format
from .export.accuracy import file_accuracy
from .io import read_json
from .limits import MAX_REPORT_BYTES
from .resources import in_package
from .snapshots import read_meta
from .specs import load_model, preprocess_of

SNAPSHOT_COLUMNS = ("val_accuracy", "accuracy", "params", "nonzero_params", "sparsity", "flops", "compressed_bytes", "compression_ratio",
                    "latency_ms", "latency", "latency_why", "latency_ratio", "agreement")   # latency: {runtime: figure}
REPORT_NAME = "report.json"     # a run folder's report (run_folder.REPORT; that module sits beside this one)


def snapshot_layers(path: str | Path) -> dict[str, dict[str, Any]]:
    layers: dict[str, dict[str, Any]] = read_meta(path).get("metrics", {}).get("layers", {}) or {}
    return layers


def _weights(row: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """(prunable weights, their non-zeros) of a snapshot's layer row; (None, None) for layers without prunable
    weights (sparsity null) and for a layer the snapshot does not have."""
    if not row or row.get("sparsity") is None:
        return None, None
    weights = row.get("weights")
    if weights is None:
        weights = math.prod(row.get("shape") or [0])
    nonzero = row.get("nonzero_weights")
    if nonzero is None:
        nonzero = round((1.0 - row["sparsity"]) * weights)
    return int(weights), int(nonzero)


def compare_snapshots(a: str | Path, b: str | Path) -> dict[str, Any]:
    """Per-layer differences between two snapshot folders (from their recorded metrics).

    Returns {"a": meta summary, "b": ..., "layers": [{"name", "a": {...}|None, "b": {...}|None,
    "delta_nonzero", "delta_params", "prunable", "weights_a", "weights_b", "nonzero_weights_a", "nonzero_weights_b",
    "delta_nonzero_weights", "delta_sparsity", "shape_changed"}], "totals": {metric: (a, b)}}.
    Sparsity and the `*_weights` fields count prunable weights only (Linear and convolution weights, as `inspect`
    and report.json do); they are None for other layers (batch norm, ...). `delta_nonzero` counts every parameter.
    """
    meta_a, meta_b = read_meta(a), read_meta(b)
    la, lb = meta_a.get("metrics", {}).get("layers", {}) or {}, meta_b.get("metrics", {}).get("layers", {}) or {}
    names = list(la) + [n for n in lb if n not in la]
    rows = []
    for name in names:
        ra, rb = la.get(name), lb.get(name)
        nz_a = ra["nonzero_params"] if ra else 0
        nz_b = rb["nonzero_params"] if rb else 0
        sp_a = ra.get("sparsity") if ra else None
        sp_b = rb.get("sparsity") if rb else None
        (w_a, nzw_a), (w_b, nzw_b) = _weights(ra), _weights(rb)
        prunable = w_a is not None or w_b is not None
        rows.append({"name": name, "a": ra, "b": rb, "delta_nonzero": nz_b - nz_a,
                     "delta_params": (rb["params"] if rb else 0) - (ra["params"] if ra else 0), "prunable": prunable,
                     "weights_a": w_a, "weights_b": w_b, "nonzero_weights_a": nzw_a, "nonzero_weights_b": nzw_b,
                     "delta_nonzero_weights": (nzw_b or 0) - (nzw_a or 0) if prunable else None,
                     "delta_sparsity": (sp_b - sp_a) if sp_a is not None and sp_b is not None else None,
                     "shape_changed": bool(ra and rb and ra.get("shape") != rb.get("shape"))})
    ma, mb = meta_a.get("metrics", {}), meta_b.get("metrics", {})
    totals = {k: (ma.get(k), mb.get(k)) for k in SNAPSHOT_COLUMNS}
    return {"a": {"path": str(a), "label": _label(a), "stage": meta_a.get("stage")},
            "b": {"path": str(b), "label": _label(b), "stage": meta_b.get("stage")},
            "layers": rows, "totals": totals}


def _label(path: str | Path) -> str:
    """"run/snapshot" of a snapshot folder."""
    return f"{Path(path).parent.parent.name}/{Path(path).name}"


def export_spec(spec: str, fmt: str, out: str | Path, data_spec: str | DataSettings | None = None, arch: str | None = None,
                trust: bool = False, keep_head: bool = False, replace_head: bool = False) -> ExportResult:
    """Export a model spec or snapshot folder in one format, verified by reading it back."""
    return export_measured(spec, fmt, out, data_spec, arch, trust, keep_head, replace_head, measure=False).result


def export_stem(spec: str, exports_dir: str | Path) -> Path:
    """Where the export dialog proposes to write `spec` (without the format's suffix): a snapshot of a run in that
    run's own `exports/` folder as `<model name>-<snapshot>`; anything else in `exports_dir` (the user's runs
    folder's), or the user's Documents when that is inside the installed workbench. Reads the run's report.json
    (bounded): call it off the GUI thread."""
    path = Path(spec)
    run = path.parent.parent if path.parent.name == "snapshots" and (path / "snapshot.json").is_file() else None
    if run is not None:
        try:
            model = read_json(run / REPORT_NAME, max_bytes=MAX_REPORT_BYTES).get("model")
        except (BadInput, AttributeError, OSError):
            model = None
        return run / "exports" / f"{_plain(model)}-{_plain(path.name)}"
    folder = Path(exports_dir)
    if not str(exports_dir) or in_package(folder):
        documents = Path.home() / "Documents"
        folder = (documents if documents.is_dir() else Path.home()) / "exports"
    return folder / _plain(spec)


def _plain(spec: object) -> str:
    """A model spec or path as a file name: a file's or folder's stem, a spec's name (`sample:digits_mlp` ->
    digits_mlp, `timm:resnet18:pretrained` -> resnet18); only letters, digits, '.', '_' and '-'."""
    if not isinstance(spec, str) or not spec:
        return "model"
    pathlike = ":" not in spec or spec.startswith(("/", ".", "~")) or "/" in spec or "\\" in spec
    name = Path(spec).stem if pathlike and Path(spec).suffix else Path(spec).name if pathlike else spec.split(":")[1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80]
    return name or "model"


@dataclass(frozen=True)
class MeasuredExport:
    """An export and its file's own top-1 accuracy on the test split (None: no data, not verified, or `problem`)."""
    result: ExportResult
    accuracy: float | None = None
    problem: str = ""           # why the file's accuracy could not be measured (e.g. a runtime without an operator)


def export_measured(spec: str, fmt: str, out: str | Path, data_spec: str | DataSettings | None = None,
                    arch: str | None = None, trust: bool = False, keep_head: bool = False, replace_head: bool = False,
                    measure: bool = True) -> MeasuredExport:
    """What `workbench export` does: export and verify, then (with data, `measure`, and a verified file) the file's
    own top-1 accuracy on the test split through its format's runtime, as the export stage measures it."""
    get_format(fmt)
    data = load_data(data_spec, preprocess=preprocess_of(spec)) if data_spec else None   # a failing data spec is an error
    loaded = load_model(spec, data.input_shape if data else None, data.num_classes if data else None,
                        arch=arch, trust=trust, keep_head=keep_head, replace_head=replace_head)
    source = ExportSource.from_loaded(loaded, data)
    result = export_model(source, fmt, out)
    if not (measure and data is not None and result.verified):
        return MeasuredExport(result)
    try:
        return MeasuredExport(result, file_accuracy(get_format(fmt), Path(result.path), source.record,
                                                    result.details or {}, data.test))
    except WorkbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a runtime without some operator: the file stays verified
        return MeasuredExport(result, None, f"{type(exc).__name__}: {str(exc)[:200]}")
