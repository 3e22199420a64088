"""Run folders -> plain data for a report: report.json, metrics.jsonl, the final snapshot's layers, analysis files.

Everything read from the folder is treated as untrusted: missing keys, nulls and odd types are tolerated (they
show as "n/a"); every file is read bounded (`core.io.read_json`: a regular file, not a link, size and depth
checked). A folder that is not a run at all, or whose report.json or metrics.jsonl cannot be read, is `BadInput`;
`collect` skips such folders (and says which) as long as one run is left.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BadInput, UnreadableFile
from ..core.io import read_json, resolved
from ..core.limits import MAX_JSON_BYTES, MAX_META_BYTES, clip
from ..core.run_folder import REPORT, read_metrics, read_run

ANALYSES = ("sensitivity", "early_exit", "slimmable", "auto")
SNAPSHOT_META = "snapshot.json"


@dataclass
class RunData:
    path: Path
    name: str                           # how the report names the run (the folder's name, made unique)
    status: str
    report: dict[str, Any]
    metrics: list[dict] = field(default_factory=list)
    layers: dict[str, dict] = field(default_factory=dict)            # final snapshot: layer -> metrics
    baseline_layers: dict[str, dict] = field(default_factory=dict)   # snapshot 0: layer -> metrics
    analyses: dict[str, Any] = field(default_factory=dict)           # sensitivity, early_exit, slimmable, auto

    @property
    def snapshots(self) -> list[dict]:
        return [s for s in self.report.get("snapshots") or [] if isinstance(s, dict)]

    @property
    def exports(self) -> list[dict]:
        return [e for e in self.report.get("exports") or [] if isinstance(e, dict)]

    @property
    def environment(self) -> dict:
        env = self.report.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def message(self) -> str:
        return str(self.report.get("message") or "")

    @property
    def final(self) -> dict | None:
        return self.snapshots[-1] if self.snapshots else None


def _read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> tuple[Any, str | None]:
    """(a JSON file's value, None), or (None, why it could not be read). NaN is allowed: it shows as n/a."""
    try:
        return read_json(path, max_bytes=max_bytes, allow_nan=True), None
    except UnreadableFile as exc:
        return None, exc.problem


def _snapshot_layers(run_dir: Path, row: dict | None) -> dict[str, dict]:
    if not row:
        return {}
    rel = row.get("path")
    candidates = []
    if isinstance(rel, str) and rel and "\0" not in rel:
        candidates.append(Path(rel) if Path(rel).is_absolute() else run_dir / rel)
    if isinstance(row.get("index"), int) and isinstance(row.get("stage"), str) and "\0" not in row["stage"]:
        candidates.append(run_dir / "snapshots" / f"{row['index']:02d}-{row['stage']}")
    for folder in candidates:
        meta, _ = _read_json(folder / SNAPSHOT_META, MAX_META_BYTES)
        if isinstance(meta, dict):
            layers = (meta.get("metrics") or {}).get("layers") if isinstance(meta.get("metrics"), dict) else None
            if isinstance(layers, dict):
                return {str(k): v for k, v in layers.items() if isinstance(v, dict)}
    return {}


def collect_run(path: str | Path, name: str | None = None) -> RunData:
    """One run folder; `BadInput` when it is not a run folder or its report.json cannot be read."""
    path = Path(path)
    where = clip(str(path), 200)
    if not path.is_dir():
        raise BadInput(f"{where}: not a run folder ({'no such folder' if not os.path.lexists(path) else 'not a folder'})")
    info = read_run(path)               # the status `workbench runs` and the GUI show
    if info.problem:
        if not os.path.lexists(path / REPORT):
            raise BadInput(f"{where}: not a run folder (no {REPORT})")
        raise BadInput(f"{where}: {clip(info.problem, 300)}")
    try:
        metrics = read_metrics(path)
    except UnreadableFile as exc:
        raise BadInput(f"{where}: unreadable metrics.jsonl ({exc.problem})") from None
    run = RunData(path, name or resolved(path).name, info.status, info.report, metrics)
    snapshots = run.snapshots
    run.layers = _snapshot_layers(path, snapshots[-1] if snapshots else None)
    run.baseline_layers = _snapshot_layers(path, snapshots[0] if snapshots else None) if len(snapshots) > 1 else run.layers
    for kind in ANALYSES:
        if os.path.lexists(path / f"{kind}.json"):
            data, why = _read_json(path / f"{kind}.json")
            run.analyses[kind] = data if why is None else {"error": f"{kind}.json could not be read ({why})"}
    return run


def collect(paths: list[str | Path], skipped: list[str] | None = None) -> list[RunData]:
    """Several run folders, each named by its folder (with a number added where two share a name). A folder that
    cannot be read is left out and its one-line reason appended to `skipped` (when given) as long as another
    run is left; otherwise (or without `skipped`) its `BadInput` is raised."""
    if not paths:
        raise BadInput("no run folder given")
    runs: list[RunData] = []
    seen: dict[str, int] = {}
    problems: list[BadInput] = []
    for p in paths:
        base = resolved(p).name or str(p)
        try:
            run = collect_run(p, base if seen.get(base, 0) == 0 else f"{base} ({seen[base] + 1})")
        except BadInput as exc:
            if skipped is None:
                raise
            problems.append(exc)
            continue
        seen[base] = seen.get(base, 0) + 1
        runs.append(run)
    if not runs:
        raise problems[0] if len(problems) == 1 else BadInput(
            f"none of the {len(problems)} run folders can be read; the first: {problems[0].message}")
    if skipped is not None:
        skipped += [exc.message for exc in problems]
    return runs


# --- derived data -----------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


@dataclass
class Curves:
    """Metric points on one continuous x axis across stages: x = the stage's offset + the point's step."""
    points: list[dict]                  # {"stage", "label", "series", "name", "x", "value"}
    boundaries: list[tuple[float, str]]  # (x where a stage starts, its label)


def curves(run: RunData) -> Curves:
    by_stage: dict[int, list[dict]] = {}
    for p in run.metrics:
        step, value = _number(p.get("step")), _number(p.get("value"))
        stage = p["stage"] if isinstance(p.get("stage"), int) else 0
        if step is None or value is None:
            continue
        by_stage.setdefault(stage, []).append({**p, "step": step, "value": value})
    points, boundaries, offset = [], [], 0.0
    for stage in sorted(by_stage):
        rows = by_stage[stage]
        label = str(rows[0].get("label") or f"stage {stage}")
        start = min(0.0, min(r["step"] for r in rows))
        boundaries.append((offset, label))
        for r in rows:
            points.append({"stage": stage, "label": label, "series": str(r.get("series") or ""),
                           "name": str(r.get("name") or ""), "x": offset + r["step"] - start, "value": r["value"]})
        offset += max(1.0, max(r["step"] for r in rows) - start)
    return Curves(points, boundaries)


def _channels(shape: Any) -> int | None:
    return shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else None


def structure_changes(run: RunData) -> list[dict]:
    """Layers whose parameter count changed against the baseline (structured pruning, restructuring, students)."""
    if run.layers is run.baseline_layers:
        return []
    out = []
    for name in dict.fromkeys([*run.baseline_layers, *run.layers]):
        before, after = run.baseline_layers.get(name, {}), run.layers.get(name, {})
        if before.get("params") == after.get("params"):
            continue
        out.append({"layer": name, "shape_before": before.get("shape"), "shape_after": after.get("shape"),
                    "channels_before": _channels(before.get("shape")), "channels_after": _channels(after.get("shape")),
                    "params_before": before.get("params"), "params_after": after.get("params")})
    return out


def layer_sparsity(run: RunData) -> list[tuple[str, float]]:
    """(layer, sparsity) of the final snapshot for every layer whose sparsity is defined (prunable weights)."""
    return [(name, v) for name, m in run.layers.items() if (v := _number(m.get("sparsity"))) is not None]
