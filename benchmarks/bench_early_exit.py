"""Early exits on the digits: val and test accuracy against average compute per sample, for each confidence threshold
(shares, FLOPs and the exits' own accuracies on val, where a threshold is chosen; test reported).

Runs `resources/recipes/early_exits.yaml` (heads after layer1 and layer2 of `sample:digits_resnet`,
trained jointly) and prints the stage's trade-off table: accuracy, average FLOPs per sample (measured
per exit with FlopCounterMode and weighted by how many samples leave there), and mean batch-1 latency
over test samples with real early exiting, beside the plain model's latency measured in the same run.

    python benchmarks/bench_early_exit.py
"""
from __future__ import annotations

import tempfile

from prune_bench_common import ROOT, table, write_result

from workbench.core.run_handle import RunOptions


def main() -> None:
    from workbench.core.events import StageFailed
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run
    run = Run(Recipe.load(ROOT / "resources" / "recipes" / "early_exits.yaml"), RunOptions(out_dir=tempfile.mkdtemp()))
    for event in run.events():
        if isinstance(event, StageFailed):
            raise RuntimeError(event.message)
    result = run.session.extra["early_exit"]
    base = run.report.data["snapshots"][0]
    rows = [{"threshold": r["threshold"], "accuracy": 100 * r["accuracy"], "test": 100 * r["test_accuracy"],
             "mflops": r["expected_mflops"],
             "saving": 1 - r["expected_mflops"] * 1e6 / base["flops"], "shares": " / ".join(f"{100 * s:.0f}%" for s in r["exit_share"]),
             "latency_ms": r["latency_ms"]} for r in result["thresholds"]]
    print(f"baseline val {base['val_accuracy'] * 100:.2f}%, test {base['accuracy'] * 100:.2f}% at {base['flops'] / 1e6:.2f} MFLOPs, "
          f"latency {base['latency_ms']:.3f} ms; exits alone (val): " + ", ".join(f"{n} {100 * a:.2f}% at {f:.2f} MFLOPs" for n, a, f in
                                       zip([*result["exits"], "final"], result["exit_accuracy"], result["exit_mflops"])))
    print()
    print(table(rows, [("threshold", "threshold", "g"), ("accuracy", "val acc %", ".2f"), ("test", "test acc %", ".2f"),
                       ("mflops", "expected MFLOPs", ".2f"),
                       ("saving", "FLOPs saved vs baseline", ".0%"), ("shares", "leave at layer1 / layer2 / final", ""),
                       ("latency_ms", "mean latency ms", ".3f")]))
    print("wrote", write_result("early_exit", {"baseline": {k: base[k] for k in ("accuracy", "val_accuracy", "flops", "latency_ms")},
                                               "exits": result, "rows": rows}))


if __name__ == "__main__":
    main()
