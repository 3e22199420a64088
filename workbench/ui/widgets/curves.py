"""The curves of a run as plain data (no Qt): metric points laid out on one continuous x-axis across stages,
analysis series read back from a run folder, coupled layers with identical curves grouped.

A metric point is what `metrics.jsonl` holds: `{"stage": 2, "label": "fine-tune pruned", "series": "train",
"name": "accuracy", "step": 3, "value": 0.97}` (stage numbers are one-based). Live runs build the same points
from their events, so a run looks the same while it runs and after a restart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...core import stages

SERIES_NAMES = {"prune": "after pruning", "finetune": "fine-tuning", "eval": "evaluation", "qat": "QAT",
                "exits": "exit heads"}
ROUNDS = {"prune"}          # step = pruning round (1, 2, ...), placed at the start of each round's fine-tuning
AT_END = {"eval"}           # step = the stage's index: placed at the end of the stage
EARLY_EXIT_X = "expected MFLOPs per sample (exit shares x measured per-exit FLOPs)"


@dataclass
class RunData:
    """One run's curves: metric points, stage names by (one-based) stage number, analysis series."""
    key: str
    name: str
    points: list[dict] = field(default_factory=list)
    stages: dict[int, str] = field(default_factory=dict)
    series: dict[tuple[str, str], dict[str, tuple]] = field(default_factory=dict)
    live: bool = False
    version: int = 0

    def add_point(self, stage: int, name: str, step: float, value: float) -> None:
        series, _, short = name.rpartition("/")
        self.points.append({"stage": stage, "label": self.stages.get(stage, ""), "series": series,
                            "name": short or name, "step": float(step), "value": float(value)})
        self.version += 1

    def add_series(self, key: tuple[str, str], name: str, xs, ys) -> None:
        self.series.setdefault(key, {})[name] = (tuple(xs), tuple(ys))
        self.version += 1


def stage_names(recipe: dict | None, titles: dict[str, str] | None = None) -> dict[int, str]:
    """Stage number (one-based, as in metrics.jsonl) -> "2. fine-tune pruned" (the card's label, else the kind's title)."""
    out = {}
    for i, s in enumerate((recipe or {}).get("stages") or []):
        if isinstance(s, dict):
            kind = str(s.get("kind", "?"))
            out[i + 1] = f"{i + 1}. {s.get('label') or (titles or {}).get(kind, kind)}"
    return out


def kind_of(name: str) -> str:
    """Which plot a metric goes to: loss, accuracy or other."""
    if "loss" in name:
        return "loss"
    return "accuracy" if "accuracy" in name else "other"


def is_percent(name: str) -> bool:
    return "accuracy" in name or "sparsity" in name


@dataclass
class Curve:
    stage: int
    series: str
    name: str
    xs: list[float]
    ys: list[float]
    label: str              # the stage's name, plus the series when a stage has several in one plot
    kind: str               # loss | accuracy | other
    batch: bool = False     # per-batch loss: drawn thin, left out of the legend
    rounds: bool = False    # one point per pruning round


@dataclass
class Layout:
    curves: list[Curve]
    boundaries: list[tuple[float, str]]   # (x where a stage starts, its name)
    end: float                            # where the last stage ends


def lay_out(points: list[dict], names: dict[int, str] | None = None) -> Layout:
    """Stages one after the other on a single x-axis (epochs): each stage starts where the previous one ended."""
    names = dict(names or {})
    by_stage: dict[int, dict[tuple[str, str], list[tuple[float, float]]]] = {}
    for p in points:
        try:
            stage, step, value = int(p["stage"]), float(p["step"]), float(p["value"])
        except (KeyError, TypeError, ValueError):
            continue
        names.setdefault(stage, f"{stage}. {p.get('label') or 'stage'}")
        by_stage.setdefault(stage, {}).setdefault((str(p.get("series", "")), str(p.get("name", ""))), []).append((step, value))
    curves, boundaries, offset = [], [], 0.0
    for stage in sorted(by_stage):
        groups = by_stage[stage]
        epochs = [s for (series, _), pts in groups.items() if series not in ROUNDS | AT_END for s, _ in pts]
        rounds = max((s for (series, _), pts in groups.items() if series in ROUNDS for s, _ in pts), default=0.0)
        extent = max(epochs, default=0.0)
        per_round = extent / rounds if rounds and extent else 0.0
        if not extent:
            extent = rounds or 1.0
        boundaries.append((offset, names[stage]))
        plots: dict[str, set[str]] = {}
        for series, name in groups:
            if "batch" not in name:
                plots.setdefault(kind_of(name), set()).add(series)
        for (series, name), pts in groups.items():
            pts = sorted(pts)
            if series in ROUNDS:
                xs = [offset + ((s - 1) * per_round if per_round else s) for s, _ in pts]
            elif series in AT_END:
                xs = [offset + extent for _ in pts]
            else:
                xs = [offset + s for s, _ in pts]
            kind = kind_of(name)
            label = names[stage]
            if len(plots.get(kind, ())) > 1 or kind == "other":
                label += f" · {SERIES_NAMES.get(series, series)}" + (f" {name}" if kind == "other" else "")
            curves.append(Curve(stage, series, name, xs, [v for _, v in pts], label, kind, "batch" in name,
                                series in ROUNDS))
        offset += extent
    return Layout(curves, boundaries, offset)


def analysis_series(analysis: dict[str, dict]) -> dict[tuple[str, str], dict[str, tuple]]:
    """The curves of a run's analysis files (sensitivity.json, early_exit.json, slimmable.json), keyed as the live
    `Series` events are: {(x label, y label): {name: (xs, ys)}}."""
    out: dict[tuple[str, str], dict[str, tuple]] = {}
    sens = analysis.get("sensitivity") or {}
    if isinstance(sens.get("layers"), dict):
        xs = tuple(sens.get("sparsities") or ())
        for layer, ys in sens["layers"].items():
            out.setdefault(("sparsity", "accuracy"), {})[f"sensitivity/{layer}"] = (xs, tuple(ys))
    rows = (analysis.get("early_exit") or {}).get("thresholds")
    if isinstance(rows, list) and rows:
        out.setdefault((EARLY_EXIT_X, "accuracy"), {})["early_exit/accuracy"] = (
            tuple(r.get("expected_mflops") for r in rows), tuple(r.get("accuracy") for r in rows))
    rows = (analysis.get("slimmable") or {}).get("widths")
    if isinstance(rows, list) and rows:
        out.setdefault(("MFLOPs per sample", "accuracy"), {})["slimmable/accuracy"] = (
            tuple(r.get("mflops") for r in rows), tuple(r.get("accuracy") for r in rows))
    return out


def group_identical(curves: dict[str, tuple]) -> dict[str, tuple]:
    """Curves with identical values (layers coupled by residual connections, pruned together) become one curve,
    named for the group: "layer1.0.conv2 = layer1.1.conv2 = conv1" (or the first two and a count)."""
    groups: dict[tuple, list[str]] = {}
    for name, (xs, ys) in curves.items():
        groups.setdefault((tuple(xs), tuple(ys)), []).append(name)
    out = {}
    for (xs, ys), members in groups.items():
        if len(members) == 1:
            out[members[0]] = (xs, ys)
            continue
        prefix = members[0].rpartition("/")[0]
        short = [m.rpartition("/")[2] for m in members]
        title = " = ".join(short) if len(short) <= 3 else f"{short[0]} = {short[1]} = … ({len(short)} coupled layers)"
        out[f"{prefix}/{title}" if prefix else title] = (xs, ys)
    return out


def short_name(series_name: str) -> str:
    """"sensitivity/layer1.0.conv1" -> "layer1.0.conv1"."""
    return series_name.rpartition("/")[2] or series_name


def run_name(path: str) -> str:
    return Path(path).name


def stage_titles() -> dict[str, str]:
    """Stage kind -> its title ("prune" -> "Prune"), as the stage cards show them."""
    out = {}
    for kind in stages.available():
        try:
            out[kind] = stages.get(kind).title
        except Exception:  # noqa: BLE001 - a kind that cannot be imported keeps its name
            out[kind] = kind
    return out


def run_from_files(found: dict, titles: dict[str, str] | None = None) -> RunData:
    """A RunData from what `qthreading.run_history.read_curves` read from a run folder."""
    run = RunData(found["key"], run_name(found["key"]), points=list(found.get("points") or []),
                  stages=stage_names(found.get("recipe"), titles))
    run.series = analysis_series(found.get("analysis") or {})
    return run
