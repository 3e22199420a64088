"""Runs and snapshots as the runs view shows them: list runs on disk, compare two snapshots, export one.

Plain data in, plain data out (dicts of numbers and paths), so a GUI or a script can use them.
"""
from __future__ import annotations

import math
from pathlib import Path

from .data import load_data
from .export import ExportResult, ExportSource, export_model, get_format
from .io import resolved
from .run_folder import list_runs as list_run_infos
from .run_folder import read_run as read_run_info
from .snapshots import read_meta
from .specs import load_model, preprocess_of

SNAPSHOT_COLUMNS = ("val_accuracy", "accuracy", "params", "nonzero_params", "sparsity", "flops", "compressed_bytes", "compression_ratio",
                    "latency_ms")


def _as_dict(info) -> dict | None:
    if info.error:
        return None
    run_dir = info.path
    snaps = [{**row, "path": str(resolved(run_dir / row["path"]))} for row in info.snapshots
             if isinstance(row.get("path"), str) and row["path"] and "\0" not in row["path"]]
    return {**info.report, "snapshots": snaps, "dir": str(resolved(run_dir)), "name": run_dir.name}


def read_run(run_dir: str | Path) -> dict | None:
    """A run's report.json with absolute snapshot paths; None when the folder holds no readable report (read as
    `run_folder.read_run` reads it: bounded, never through a link)."""
    return _as_dict(read_run_info(run_dir))


def list_runs(runs_dir: str | Path) -> list[dict]:
    """Every readable run under `runs_dir` (`run_folder.list_runs`), oldest first by folder name."""
    runs = [_as_dict(info) for info in sorted(list_run_infos(runs_dir), key=lambda info: info.path.name)]
    return [r for r in runs if r is not None]


def snapshot_layers(path: str | Path) -> dict[str, dict]:
    return read_meta(path).get("metrics", {}).get("layers", {}) or {}


def _weights(row: dict | None) -> tuple[int | None, int | None]:
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


def compare_snapshots(a: str | Path, b: str | Path) -> dict:
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
    label = lambda m, p: f"{Path(p).parent.parent.name}/{Path(p).name}"
    return {"a": {"path": str(a), "label": label(meta_a, a), "stage": meta_a.get("stage")},
            "b": {"path": str(b), "label": label(meta_b, b), "stage": meta_b.get("stage")},
            "layers": rows, "totals": totals}


def export_spec(spec: str, fmt: str, out: str | Path, data_spec: str | None = None, arch: str | None = None,
                trust: bool = False, keep_head: bool = False) -> ExportResult:
    """Export a model spec or snapshot folder in one format, verified by reading it back (what `workbench export` does)."""
    get_format(fmt)
    data = load_data(data_spec, preprocess=preprocess_of(spec)) if data_spec else None   # a failing data spec is an error
    loaded = load_model(spec, data.input_shape if data else None, data.num_classes if data else None,
                        arch=arch, trust=trust, keep_head=keep_head)
    source = ExportSource.from_loaded(loaded, data)
    return export_model(source, fmt, out)
