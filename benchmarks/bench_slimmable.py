"""Slimmable widths on the digits: one network at four widths against narrow networks trained alone.

Runs `resources/recipes/slimmable.yaml` (`sample:digits_resnet` fine-tuned for 15 epochs with all widths
trained at every step) and prints each width's test accuracy, parameters, FLOPs and batch-1 latency,
measured on the physically narrowed network with recalibrated batch norms. Beside it: the same narrow
architectures (`arch:resnet8:width=4|8|12`) trained alone from scratch with the same optimiser for 30
epochs (the sample's own schedule), so the cost of sharing weights across widths is visible.

    python benchmarks/bench_slimmable.py [--skip-alone]
"""
from __future__ import annotations

import argparse
import tempfile

from prune_bench_common import ROOT, table, write_result

from workbench.core.run_handle import RunOptions


def _run(recipe):
    from workbench.core.events import StageFailed
    from workbench.core.runner import Run
    run = Run(recipe, RunOptions(out_dir=tempfile.mkdtemp(prefix="wb-slim-")))
    for event in run.events():
        if isinstance(event, StageFailed):
            raise RuntimeError(event.message)
    return run


def alone(width: int) -> float:
    from workbench.core.recipe import Recipe
    run = _run(Recipe.from_dict({"model": f"arch:resnet8:width={width}", "data": "sample:digits", "stages": [
        {"kind": "train", "epochs": 30, "optimizer": "adam", "lr": 0.002, "weight_decay": 0.0001, "schedule": "cosine"}]}))
    return run.report.data["snapshots"][-1]["accuracy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-alone", action="store_true")
    args = ap.parse_args()
    from workbench.core.recipe import Recipe
    run = _run(Recipe.load(ROOT / "resources" / "recipes" / "slimmable.yaml"))
    rows = [dict(r) for r in run.session.extra["slimmable"]["widths"]]
    full = rows[0]
    for r in rows:
        r["accuracy"] *= 100                      # val: where the deployed width is chosen
        r["test"] = 100 * r["test_accuracy"]
        r["speedup"] = full["latency_ms"] / r["latency_ms"]
        r["flops_ratio"] = full["mflops"] / r["mflops"]
        channels = round(16 * r["width"])
        r["alone"] = None if args.skip_alone or r["width"] == 1.0 else 100 * alone(channels)
    base = run.report.data["snapshots"][0]
    print(f"sample:digits_resnet before: test {100 * base['accuracy']:.2f}% (trained alone at full width); "
          f"deployed width 0.5: test {100 * run.report.data['snapshots'][1]['accuracy']:.2f}%\n")
    print(table(rows, [("width", "width", "g"), ("accuracy", "val acc % (slimmable)", ".2f"),
                       ("test", "test acc % (slimmable)", ".2f"),
                       ("alone", "same width trained alone, test %", ".2f"), ("params", "params", ","),
                       ("mflops", "MFLOPs", ".2f"), ("flops_ratio", "FLOPs ratio", ".1f"),
                       ("latency_ms", "latency ms", ".3f"), ("speedup", "speed-up", ".2f")]))
    print("wrote", write_result("slimmable", {"rows": rows, "baseline_accuracy": base["accuracy"]}))


if __name__ == "__main__":
    main()
