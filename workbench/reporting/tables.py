"""The report's tables as rows of text, shared by the HTML and the Markdown (and the CSV's raw values).

Formatting rules: a missing or null value is "n/a", never 0; accuracies and sparsities in percent, counts with
thousands separators, ratios with one decimal and "x", latencies in ms with three decimals.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import runtimes
from ..core.io import atomic_path
from .collect import RunData, structure_changes

NA = "n/a"
MAX_ROWS = 500          # a table longer than this shows its first rows and says how many were left out


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def fmt(value: Any, kind: str) -> str:
    """One cell. kind: pct (fraction -> 97.77%), pct1 (-> 94.1%), count (12,345), float3, ratio (40.8x), sci, text."""
    if value is None:
        return NA
    if kind == "spread":
        return spread(value)
    if kind == "shown":                  # formatted already (a deploy runtime's spread)
        return str(value)
    if kind == "text":
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
    if not is_number(value):
        return NA
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "pct1":
        return f"{value:.1%}"
    if kind == "count":
        return f"{round(value):,}"
    if kind == "float3":
        return f"{value:.3f}"
    if kind == "ratio":
        return f"{value:.1f}x"
    return f"{value:.4g}"


def spread(latency: Any, runtime: str = "eager") -> str:
    """A snapshot's latency figure on `runtime` (eager by default): its p10-p90 in ms and repeats, "noisy" when too
    wide to mean anything."""
    eager = latency.get(runtime) if isinstance(latency, dict) else None
    if not isinstance(eager, dict) or not all(is_number(eager.get(k)) for k in ("p10_ms", "p90_ms", "repeats")):
        return NA
    noisy = " noisy" if eager.get("noisy") else ""
    return f"{eager['p10_ms']:.3f}-{eager['p90_ms']:.3f} ({round(eager['repeats'])} runs){noisy}"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)   # right-aligned columns
    note: str = ""

    def __post_init__(self) -> None:
        self.numeric = self.numeric or [False] * len(self.headers)
        if len(self.rows) > MAX_ROWS:
            self.note = f"first {MAX_ROWS} of {len(self.rows)} rows"
            self.rows = self.rows[:MAX_ROWS]


def _table(columns, records: list[dict], lead: Sequence[tuple[str, list[str]]] = ()) -> Table:
    """columns: (key, title, kind); lead: extra first columns (title, one value per record)."""
    headers = [t for t, _ in lead] + [t for _, t, _ in columns]
    rows = [[vals[i] for _, vals in lead] + [fmt(r.get(k), kind) for k, _, kind in columns] for i, r in enumerate(records)]
    numeric = [False] * len(lead) + [kind not in ("text",) for _, _, kind in columns]
    return Table(headers, rows, numeric)


# key, title, kind
SNAPSHOT_COLUMNS = (("index", "#", "text"), ("stage", "stage", "text"), ("val_accuracy", "val acc", "pct"),
                    ("accuracy", "test acc", "pct"), ("params", "params", "count"), ("nonzero_params", "non-zero", "count"),
                    ("sparsity", "sparsity", "pct1"), ("flops", "FLOPs", "count"), ("compressed_bytes", "compressed B", "count"),
                    ("compressed_format", "format", "text"), ("compression_ratio", "ratio", "ratio"),
                    ("latency_ms", "latency ms", "float3"), ("latency", "p10-p90 ms", "spread"),
                    ("agreement", "int8 agreement", "pct"))
EXPORT_COLUMNS = (("format", "format", "text"), ("path", "path", "text"), ("bytes", "bytes", "count"),
                  ("verified", "verified", "text"), ("max_abs_diff", "max |diff|", "sci"),
                  ("accuracy", "test acc (file)", "pct"), ("check", "check", "text"), ("error", "error", "text"))
ENVIRONMENT_KEYS = (("torch", "torch"), ("workbench", "workbench"), ("python", "Python"), ("device", "device"),
                    ("cpu", "CPU"), ("gpu", "GPU"), ("threads", "threads"), ("cpu_cores", "CPU cores"),
                    ("world_size", "world size"), ("backend", "backend"), ("platform", "platform"))
CSV_COLUMNS = ("run", *(k for k, _, kind in SNAPSHOT_COLUMNS if kind != "spread"), "dense_bytes", "seconds", "path")


def deploy_runtime(run: RunData) -> str | None:
    """The run's deploy runtime (report.json's `runtime`) when it is one besides eager; None otherwise."""
    name = run.report.get("runtime")
    return name if isinstance(name, str) and name != runtimes.DEFAULT and name in runtimes.names() else None


def _runtime_columns(title: str) -> tuple[tuple[str, str, str], ...]:
    """The snapshot columns with the deploy runtime's latency and spread next to eager's."""
    at = next(i for i, c in enumerate(SNAPSHOT_COLUMNS) if c[0] == "latency") + 1
    return (*SNAPSHOT_COLUMNS[:at], ("runtime_ms", f"{title} ms", "float3"), ("runtime_spread", f"{title} p10-p90 ms", "shown"),
            *SNAPSHOT_COLUMNS[at:])


def _with_runtime(snapshot: dict, name: str | None) -> dict:
    latency = snapshot.get("latency")
    figure = latency.get(name) if isinstance(latency, dict) and name else None
    return {**snapshot, "runtime": name or runtimes.DEFAULT, "runtime_spread": spread(latency, name) if name else NA,
            "runtime_ms": figure.get("median_ms") if isinstance(figure, dict) else None}


def snapshot_table(run: RunData) -> Table:
    name = deploy_runtime(run)
    if name is None:
        return _table(SNAPSHOT_COLUMNS, run.snapshots)
    return _table(_runtime_columns(name), [_with_runtime(s, name) for s in run.snapshots])


def all_snapshots_table(runs: list[RunData]) -> Table:
    records = [(run.name, s) for run in runs for s in run.snapshots]
    lead = [("run", [n for n, _ in records])]
    if not any(deploy_runtime(run) for run in runs):
        return _table(SNAPSHOT_COLUMNS, [s for _, s in records], lead)
    rows = [_with_runtime(s, deploy_runtime(run)) for run in runs for s in run.snapshots]
    return _table((("runtime", "runtime", "text"), *_runtime_columns("runtime")), rows, lead)


def export_table(run: RunData) -> Table:
    rows = [{**e, "verified": None if e.get("verified") is None else ("yes" if e.get("verified") else "NO")}
            for e in run.exports]
    return _table(EXPORT_COLUMNS, rows)


def environment_table(run: RunData) -> Table:
    env = run.environment
    keys = list(ENVIRONMENT_KEYS) + [(k, k) for k in env if k not in dict(ENVIRONMENT_KEYS)]
    return Table(["", "value"], [[title, fmt(env.get(k), "text")] for k, title in keys])


def summary_table(runs: list[RunData]) -> Table:
    """One row per run: status, model, data and its baseline and final snapshots' main numbers."""
    headers = ["run", "status", "model", "data", "snapshots", "baseline acc", "final acc", "final stage", "params",
               "non-zero", "compressed B", "ratio", "latency ms"]
    rows = []
    for run in runs:
        first, last = (run.snapshots[0], run.snapshots[-1]) if run.snapshots else ({}, {})
        rows.append([run.name, run.status, fmt(run.report.get("model"), "text"), fmt(run.report.get("data"), "text"),
                     str(len(run.snapshots)), fmt(first.get("accuracy"), "pct"), fmt(last.get("accuracy"), "pct"),
                     fmt(last.get("stage"), "text"), fmt(last.get("params"), "count"), fmt(last.get("nonzero_params"), "count"),
                     fmt(last.get("compressed_bytes"), "count"), fmt(last.get("compression_ratio"), "ratio"),
                     fmt(last.get("latency_ms"), "float3")])
    return Table(headers, rows, [False] * 4 + [True] * 3 + [False] + [True] * 5)


def layer_table(run: RunData) -> Table:
    cols = (("params", "params", "count"), ("nonzero_params", "non-zero", "count"), ("sparsity", "sparsity", "pct1"),
            ("flops", "FLOPs", "count"), ("shape", "shape", "text"))
    names = list(run.layers)
    return _table(cols, [run.layers[n] for n in names], [("layer", names)])


def structure_table(run: RunData) -> Table:
    changes = structure_changes(run)
    cols = (("shape_before", "shape before", "text"), ("shape_after", "shape after", "text"),
            ("channels_before", "channels before", "count"), ("channels_after", "channels after", "count"),
            ("params_before", "params before", "count"), ("params_after", "params after", "count"))
    return _table(cols, changes, [("layer", [c["layer"] for c in changes])])


def sensitivity_table(data: dict) -> Table | None:
    sparsities, layers = data.get("sparsities"), data.get("layers")
    if not isinstance(sparsities, list) or not isinstance(layers, dict):
        return None
    headers = ["layer"] + [f"{fmt(s, 'pct1')} removed" for s in sparsities]
    rows = [[str(name)] + [fmt(v, "pct") for v in (curve if isinstance(curve, list) else [])] for name, curve in layers.items()]
    return Table(headers, [r + [NA] * (len(headers) - len(r)) for r in rows], [False] + [True] * len(sparsities))


def early_exit_table(data: dict) -> Table | None:
    rows = [r for r in data.get("thresholds") or [] if isinstance(r, dict)]
    if not rows:
        return None
    cols = (("threshold", "threshold", "sci"), ("accuracy", "accuracy", "pct"), ("expected_mflops", "expected MFLOPs", "float3"),
            ("flops_ratio", "of all-exits FLOPs", "pct1"), ("latency_ms", "latency ms", "float3"))
    shares = [", ".join(fmt(s, "pct1") for s in r.get("exit_share") or []) or NA for r in rows]
    table = _table(cols, rows)
    table.headers.append("exits taken")
    table.numeric.append(False)
    for row, share in zip(table.rows, shares):
        row.append(share)
    return table


def slimmable_table(data: dict) -> Table | None:
    rows = [r for r in data.get("widths") or [] if isinstance(r, dict)]
    if not rows:
        return None
    cols = (("width", "width", "sci"), ("accuracy", "accuracy", "pct"), ("mflops", "MFLOPs", "float3"),
            ("params", "params", "count"), ("latency_ms", "latency ms", "float3"))
    return _table(cols, rows)


def generic_table(items: Any) -> Table | None:
    """Whatever a list of records or a mapping holds (auto.json's allocation and candidates: format not fixed yet)."""
    if isinstance(items, dict):
        if all(isinstance(v, dict) for v in items.values()) and items:
            keys = list(dict.fromkeys(k for v in items.values() for k in v))
            return Table(["name", *keys], [[str(n), *(_any(v.get(k)) for k in keys)] for n, v in items.items()])
        return Table(["key", "value"], [[str(k), _any(v)] for k, v in items.items()]) if items else None
    if isinstance(items, list) and items:
        if all(isinstance(v, dict) for v in items):
            keys = list(dict.fromkeys(k for v in items for k in v))
            return Table(keys, [[_any(v.get(k)) for k in keys] for v in items])
        return Table(["value"], [[_any(v)] for v in items])
    return None


def _any(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value, "sci")
    text = fmt(value, "text")
    return text if len(text) <= 200 else text[:199] + "…"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")     # a spreadsheet reads a cell starting so as a formula


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as itself: a text that starts like a formula gets a leading `'`
    (OWASP's advice against CSV injection); numbers, negative ones included, stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
        text = text.encode("utf-8", "replace").decode("utf-8")     # a lone surrogate from the file: shown as "?"
        return "'" + text if text.startswith(FORMULA_START) else text
    return value


def write_csv(runs: list[RunData], path: Path) -> Path:
    """One row per snapshot of every run, raw values as in report.json (empty where null), written atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        for s in run.snapshots:
            writer.writerow([csv_cell(run.name)] + [csv_cell(s.get(k)) for k in CSV_COLUMNS[1:]])
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return path
