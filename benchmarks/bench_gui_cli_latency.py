"""Same recipe, same machine: the latency figures of a GUI run (its own child process, as the window starts it)
and of `workbench run` agree within their spread (issue 19, "done when").

The recipe halves the sample ResNet-8's latency on onnxruntime with the `auto` stage, so both runs carry the stage's
own A/B ratio (`latency_ratio`, measured alternately in one process) and every snapshot's eager and onnxruntime
figures. The two runs go one after the other; run it on a loaded machine to see the figures hold.

    python benchmarks/bench_gui_cli_latency.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from prune_bench_common import ROOT, table, write_result

RECIPE = """
model: sample:digits_resnet
data: sample:digits
seed: 0
runtime: onnxruntime
stages:
  - {kind: auto, target: {latency: 0.5}, max_drop: 0.05, methods: [structured], epochs: 60, finetune_epochs: 12,
     channels: [0.0, 0.25, 0.5, 0.625, 0.75], push: false}
"""


def gui_run(recipe_path: Path, out: Path) -> dict:
    """The GUI's path: a ChildRun, followed to its end."""
    from workbench.core.child_run import ChildRun
    from workbench.core.recipe import Recipe
    from workbench.core.run_handle import RunOptions
    for _ in ChildRun(Recipe.load(str(recipe_path)), RunOptions(out_dir=out)).events():
        pass
    return json.loads((out / "report.json").read_text())


def cli_run(recipe_path: Path, out: Path) -> dict:
    subprocess.run([sys.executable, "-m", "workbench", "run", str(recipe_path), "--out", str(out), "--quiet"],
                   cwd=ROOT, check=False)
    return json.loads((out / "report.json").read_text())


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="wb-gui-cli-") as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(RECIPE)
        gui, cli = gui_run(path, Path(tmp) / "gui"), cli_run(path, Path(tmp) / "cli")
    for g, c in zip(gui["snapshots"], cli["snapshots"]):
        for runtime in ("eager", "onnxruntime"):
            fg, fc = (g.get("latency") or {}).get(runtime), (c.get("latency") or {}).get(runtime)
            if fg and fc:
                rows.append({"figure": f"{g['stage']} latency, {runtime} (ms)",
                             "gui": f"{fg['median_ms']:.4f} ({fg['p10_ms']:.4f}-{fg['p90_ms']:.4f})",
                             "cli": f"{fc['median_ms']:.4f} ({fc['p10_ms']:.4f}-{fc['p90_ms']:.4f})",
                             "agree": overlap((fg["p10_ms"], fg["p90_ms"]), (fc["p10_ms"], fc["p90_ms"]))})
        rg, rc = g.get("latency_ratio"), c.get("latency_ratio")
        if rg and rc:
            rows.append({"figure": f"{g['stage']} latency ratio on {rg['runtime']} (A/B)",
                         "gui": f"{rg['value']:.3f} ({rg['p10']:.3f}-{rg['p90']:.3f})",
                         "cli": f"{rc['value']:.3f} ({rc['p10']:.3f}-{rc['p90']:.3f})",
                         "agree": overlap((rg["p10"], rg["p90"]), (rc["p10"], rc["p90"]))})
    print(table(rows, [("figure", "figure", ""), ("gui", "GUI run: median (p10-p90)", ""),
                       ("cli", "workbench run: median (p10-p90)", ""), ("agree", "spreads overlap", "")]))
    out = write_result("gui_cli_latency", {"rows": rows})
    print(f"-> {out}")
    return 0 if rows and all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
