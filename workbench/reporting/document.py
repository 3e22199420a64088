"""The report as a list of blocks (headings, text, tables, plots, code), rendered by `html` and `markdown` alike."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import yaml

from . import plots, tables
from .collect import RunData
from .plots import Plot
from .tables import Table


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Text:
    text: str
    kind: str = ""            # "", "status-<status>", "note", "meta"


@dataclass
class Code:
    text: str
    lang: str = "yaml"


Block = Heading | Text | Code | Table | Plot

STATUS_WORDS = {"finished": "finished", "failed": "failed", "cancelled": "cancelled", "interrupted": "interrupted "
                "(the process that wrote it is gone)", "running": "still running"}


def recipe_yaml(run: RunData) -> str:
    recipe = run.report.get("recipe")
    if recipe is None:
        return "# no recipe recorded\n"
    try:
        return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True, width=100)
    except yaml.YAMLError:
        return json.dumps(recipe, indent=2, default=str)


def _fmt_splits(report: dict) -> str:
    splits = report.get("splits")
    if not isinstance(splits, dict) or not splits:
        return ""
    return ", splits " + ", ".join(f"{k} {tables.fmt(v, 'count')}" for k, v in splits.items())


def _analysis_blocks(run: RunData, prefix: str) -> list[Block]:
    out: list[Block] = []
    a = run.analyses
    if "sensitivity" in a and isinstance(a["sensitivity"], dict):
        d = a["sensitivity"]
        out.append(Heading(3, "Sensitivity analysis"))
        out.append(Text(f"Accuracy of the model with one layer pruned at a time (on a copy); baseline test accuracy "
                        f"{tables.fmt(d.get('baseline_accuracy'), 'pct')}."))
        out += [b for b in (plots.sensitivity(d, f"{prefix}sensitivity"), tables.sensitivity_table(d)) if b is not None]
    if "early_exit" in a and isinstance(a["early_exit"], dict):
        d = a["early_exit"]
        out.append(Heading(3, "Early exits"))
        exits = ", ".join(map(str, d.get("exits") or [])) or "n/a"
        accs = ", ".join(tables.fmt(v, "pct") for v in d.get("exit_accuracy") or []) or "n/a"
        out.append(Text(f"Exits after {exits}; accuracy of each exit alone (then the final classifier): {accs}."))
        out += [b for b in (plots.early_exit(d, f"{prefix}early_exit"), tables.early_exit_table(d)) if b is not None]
    if "slimmable" in a and isinstance(a["slimmable"], dict):
        d = a["slimmable"]
        out.append(Heading(3, "Slimmable widths"))
        out.append(Text(f"Deployed width: {tables.fmt(d.get('deploy_width'), 'sci')}."))
        out += [b for b in (plots.slimmable(d, f"{prefix}slimmable"), tables.slimmable_table(d)) if b is not None]
    if "auto" in a:
        out += _auto_blocks(a["auto"])
    for kind, d in a.items():
        if isinstance(d, dict) and set(d) == {"error"}:
            out.append(Text(f"{kind}.json: {d['error']}", "note"))
    return out


def _auto_blocks(d) -> list[Block]:
    """auto.json's format is not fixed yet: show its scalars, its allocation table and its candidates, whatever they hold."""
    out: list[Block] = [Heading(3, "Automatic compression")]
    if not isinstance(d, dict):
        table = tables.generic_table(d)
        return out + ([table] if table else [Text("auto.json holds nothing to show.", "note")])
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict | list)}
    scalar_table = tables.generic_table(scalars)       # None when there are none
    if scalar_table is not None:
        out.append(scalar_table)
    for key, title in (("allocation", "Chosen allocation"), ("layers", "Per layer"), ("candidates", "Candidates tried")):
        table = tables.generic_table(d.get(key))
        if table is not None:
            out += [Text(title, "caption"), table]
    for key, value in d.items():
        if key not in ("allocation", "layers", "candidates") and isinstance(value, dict | list):
            table = tables.generic_table(value)
            if table is not None:
                out += [Text(key, "caption"), table]
    return out


def run_blocks(run: RunData, number: int, single: bool) -> list[Block]:
    prefix = "" if single else f"run{number}-"
    r = run.report
    out: list[Block] = [Heading(2, f"Run {number}: {run.name}" if not single else f"Run: {run.name}", f"run-{number}")]
    status = STATUS_WORDS.get(run.status, run.status)
    out.append(Text(f"Status: {status}" + (f". {run.message}" if run.message else ""), f"status-{run.status}"))
    out.append(Text(f"Model {tables.fmt(r.get('model'), 'text')}, data {tables.fmt(r.get('data'), 'text')}{_fmt_splits(r)}; "
                    f"folder {run.path}", "meta"))
    out += [Heading(3, "Snapshots"), tables.snapshot_table(run)]
    if not run.snapshots:
        out.append(Text("No snapshot was written.", "note"))
    curves = plots.training_curves([run], f"{prefix}curves")
    if curves:
        out += [Heading(3, "Training curves"), curves]
    if single:
        scatter = plots.ratio_vs_accuracy([run])
        if scatter:
            out += [Heading(3, "Compression ratio vs accuracy"), scatter]
    snap = run.final or {}
    if run.layers:
        out.append(Heading(3, f"Per layer: snapshot {snap.get('index', '?')} ({snap.get('stage', '?')})"))
        out += [b for b in (plots.sparsity_per_layer(run, f"{prefix}sparsity"),) if b is not None]
        changes = tables.structure_table(run)
        if changes.rows:
            out += [Text("Layers whose size changed against the baseline (structured pruning, restructuring; layers added "
                         "or removed show n/a on the other side):", "caption"),
                    *[b for b in (plots.structure(run, f"{prefix}channels"),) if b is not None], changes]
        out += [Text("Every layer:", "caption"), tables.layer_table(run)]
    out += _analysis_blocks(run, prefix)
    out.append(Heading(3, "Exports"))
    out.append(tables.export_table(run) if run.exports else Text("No export in this run.", "note"))
    out += [Heading(3, "Environment"), tables.environment_table(run), Heading(3, "Recipe"), Code(recipe_yaml(run))]
    return out


def build(runs: list[RunData]) -> tuple[str, list[Block]]:
    """The title and the blocks of the report of `runs` (one run, or a comparison of several)."""
    single = len(runs) == 1
    title = f"Workbench report: {runs[0].name}" if single else f"Workbench report: {len(runs)} runs compared"
    blocks: list[Block] = [Text(f"Written {datetime.now():%Y-%m-%d %H:%M} from "
                                + ", ".join(str(r.path) for r in runs), "meta")]
    if not single:
        blocks += [Heading(2, "Comparison", "comparison"), tables.summary_table(runs)]
        curves = plots.training_curves(runs, "compare-curves")
        if curves:
            blocks += [Heading(3, "Training curves"), curves]
        scatter = plots.ratio_vs_accuracy(runs, "compare-ratio_vs_accuracy")
        if scatter:
            blocks += [Heading(3, "Compression ratio vs accuracy"), scatter]
        blocks += [Heading(3, "Every snapshot"), tables.all_snapshots_table(runs)]
    for i, run in enumerate(runs, start=1):
        blocks += run_blocks(run, i, single)
    return title, blocks
