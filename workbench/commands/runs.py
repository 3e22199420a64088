"""`workbench runs [RUNS_DIR] [--json]`: the runs in a folder and their snapshots, as the GUI's runs view lists them.

Everything shown comes from files anyone could have written: a folder whose report.json cannot be read is listed
on one line with the reason, and every text is shown on one line, cut short, with control characters escaped.
The runs come from `run_folder.list_runs` (newest first, the statuses the GUI shows); what a killed run left
behind (a snapshot cut short while being written) is listed as its debris, never as a snapshot, and never deleted.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..core.errors import BadInput
from ..core.limits import clip, is_int
from ..core.run_folder import RunInfo, list_runs

COLUMNS = (("index", "#", "{}"), ("stage", "stage", "{}"), ("accuracy", "test acc", "{:.2%}"),
           ("val_accuracy", "val acc", "{:.2%}"), ("params", "params", "{:,}"), ("nonzero_params", "non-zero", "{:,}"),
           ("sparsity", "sparsity", "{:.1%}"), ("flops", "FLOPs", "{:,}"), ("compressed_bytes", "compressed B", "{:,}"),
           ("compression_ratio", "ratio", "{:.1f}x"), ("latency_ms", "latency ms", "{:.3f}"),
           ("agreement", "int8 agreement", "{:.1%}"))


def _noisy(latency: object) -> bool:
    """The eager latency figure's spread is too wide to mean anything (report.json read as found)."""
    eager = latency.get("eager") if isinstance(latency, dict) else None
    return isinstance(eager, dict) and eager.get("noisy") is True


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if key == "stage":
        return clip(value, 40) if value is not None else "n/a"
    if not (is_int(value) or isinstance(value, float) and math.isfinite(value)):
        return "n/a"
    noisy = " noisy" if key == "latency_ms" and _noisy(row.get("latency")) else ""
    try:
        return clip(fmt.format(value) + noisy, 40)
    except (ValueError, OverflowError):            # an integer too large for a float or for text
        return "n/a"


def format_runs(runs: list[RunInfo]) -> str:
    lines = []
    for run in runs:
        report, name = run.report, clip(run.name)
        head = f"{name}  [{run.status}]  model {clip(report.get('model', '?'))}  data {clip(report.get('data', '?'))}"
        lines.append(head if not run.problem else f"{name}  [skipped]  {clip(run.problem, 200)}")
        if report.get("message") and run.status != "finished":
            lines.append(f"  {clip(report['message'], 300)}")
        lines += [f"  debris: {clip(str(d), 300)}" for d in run.debris]
        rows = [[title for _, title, _ in COLUMNS]] + [[_cell(s, k, f) for k, _, f in COLUMNS] for s in run.snapshots]
        if len(rows) > 1:
            widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
            for r in rows:
                lines.append("  " + "  ".join(v.rjust(w) if c > 1 else v.ljust(w) for c, (v, w) in enumerate(zip(r, widths))))
        lines.append("")
    return "\n".join(lines).rstrip() or "no runs"


def as_json(run: RunInfo) -> dict[str, Any]:
    """One run of `workbench runs --json`: "error" is the `problem` (why report.json could not be read)."""
    return {"path": str(run.dir), "name": run.name, "status": run.status, "error": run.problem,
            **{k: run.report.get(k) for k in ("model", "data", "message", "environment", "splits")},
            "snapshots": list(run.snapshots), "exports": run.report.get("exports", []),
            "debris": [{"path": d.path, "what": d.what} for d in run.debris]}


def runs_command(args) -> int:
    folder = Path(args.runs_dir or "runs")
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder}: not a folder")
    runs = list_runs(folder)
    if args.json:
        print(json.dumps([as_json(r) for r in runs], indent=1))
    else:
        print(format_runs(runs) if runs else f"no runs in {clip(str(folder))}")
    return 0
