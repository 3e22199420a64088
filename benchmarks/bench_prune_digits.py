"""(a) `sample:digits_mlp` pruned to >= 90% global sparsity with iterative fine-tuning keeps its test accuracy.

Runs resources/recipes/iterative_magnitude.yaml (global magnitude pruning, gradual schedule, six
prune / fine-tune rounds) and compares the pruned snapshot with the baseline. Target: sparsity
>= 0.90 of all parameters (biases included) and accuracy within 0.5 points of the baseline.

    python benchmarks/bench_prune_digits.py [--recipe resources/recipes/iterative_magnitude.yaml]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prune_bench_common import ROOT, table, write_result

from workbench.core.run_handle import RunOptions


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(ROOT / "resources" / "recipes" / "iterative_magnitude.yaml"))
    args = ap.parse_args()
    from workbench.core.events import RunFinished
    from workbench.core.pruning.layers import weight_sparsity
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run

    recipe = Recipe.load(args.recipe)
    t0 = time.perf_counter()
    run = Run(recipe, RunOptions(out_dir=Path(tempfile.mkdtemp(prefix="bench-prune-digits-"))))
    last = list(run.events())[-1]
    seconds = time.perf_counter() - t0
    assert isinstance(last, RunFinished) and last.ok, getattr(last, "message", last)
    rows = run.report.data["snapshots"]
    base, pruned = rows[0], next(r for r in rows if r["stage"] == "prune")
    result = {
        "recipe": str(Path(args.recipe).relative_to(ROOT)), "model": run.report.data["model"],
        "baseline_accuracy": base["accuracy"], "final_accuracy": pruned["accuracy"],
        "accuracy_drop_points": 100 * (base["accuracy"] - pruned["accuracy"]),
        "sparsity": pruned["sparsity"], "weight_sparsity": weight_sparsity(run.session.model),
        "nonzero_params": pruned["nonzero_params"], "params": pruned["params"],
        "compressed_bytes": pruned["compressed_bytes"], "compressed_format": pruned["compressed_format"],
        "dense_bytes": base["dense_bytes"], "seconds": seconds,
    }
    result["pass"] = result["sparsity"] >= 0.90 and result["accuracy_drop_points"] <= 0.5
    print(table([result], [("baseline_accuracy", "baseline acc", ".4f"), ("final_accuracy", "pruned acc", ".4f"),
                           ("accuracy_drop_points", "drop (points)", ".2f"), ("sparsity", "sparsity (all params)", ".4f"),
                           ("weight_sparsity", "sparsity (weights)", ".4f"), ("nonzero_params", "non-zeros", "d"),
                           ("compressed_bytes", "smallest file (B)", "d"), ("seconds", "run time (s)", ".0f"),
                           ("pass", "pass", "")]))
    print(f"wrote {write_result('prune_digits', result)}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
