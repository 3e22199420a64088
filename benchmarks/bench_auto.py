"""Compression to a budget (the `auto` stage): the automatic allocation against a uniform one at the same budget, in
the same run, and against the hand-tuned resources/recipes/deep_compression.yaml.

Rows (each seed reshuffles the train/val carve and the fine-tuning order; the sample models were trained on seed
0's train split, so for seeds 1-2 val holds some of their training images: test, never touched, is the honest
column):
- `sample:digits_mlp` at 40x and 60x smaller (packed file against fp32 bytes): unstructured sparsity + k-means bits;
- `sample:digits_resnet` at half its measured batch-1 CPU latency: structured pruning (channels per layer).
Knapsack and uniform get the same settings and fine-tuning (one candidate at the target, max_drop out of the way,
so both are judged at equal budget); uniform = the same sparsity and bit width (or channel fraction) everywhere,
the least compression that fits; best = the stage's default, both tried at the target and the better on val kept
(twice the fine-tuning). Then the hand recipe, and `auto` asked for the hand recipe's ratio with the hand
recipe's val drop as max_drop, pushing further while val allows: 40 fine-tuning epochs and 3 of centroid fine-tuning
per candidate (the hand recipe: 65 and 3), 150 for the whole search.
Latency is measured again here, alternating with the baseline, one torch thread (see core/auto/timing.py).

    python benchmarks/bench_auto.py            # 3 seeds
    python benchmarks/bench_auto.py --seeds 1  # quicker
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prune_bench_common import ROOT, table, write_result

from workbench.core.run_handle import RunOptions

ROWS = {
    "mlp_40x": ("sample:digits_mlp", "{ratio: 40}", "[prune, kmeans]",
                "epochs: 54, finetune_epochs: 24, centroid_epochs: 3, prune_steps: 3"),
    "mlp_60x": ("sample:digits_mlp", "{ratio: 60}", "[prune, kmeans]",
                "epochs: 54, finetune_epochs: 24, centroid_epochs: 3, prune_steps: 3"),
    "resnet_half_latency": ("sample:digits_resnet", "{latency: 0.5}", "[structured]",
                            "epochs: 24, finetune_epochs: 12, channels: [0.0, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]"),
}


def run_recipe(text: str, out: Path):
    from workbench.core.events import StageFailed
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run
    run = Run(Recipe.from_text(text), RunOptions(out_dir=out))
    failed = [e.message for e in run.events() if isinstance(e, StageFailed)]
    return run, (failed[0] if failed else None)


def latency_vs_baseline(run) -> float:
    from workbench.core.auto.timing import latency_ratio
    from workbench.core.snapshots import load_snapshot
    base = load_snapshot(run.session.snapshot_paths[0]).module.eval()
    final = load_snapshot(run.session.snapshot_paths[-1]).module.eval()
    return latency_ratio(final, base, run.session.example_input(1).cpu(), passes=9, threads=1)[0]


def result(name: str, run, failure: str | None, seconds: float) -> dict:
    snaps = run.report.data["snapshots"]
    base, final = snaps[0], snaps[-1]
    row = {"row": name, "failed": failure, "seconds": round(seconds, 1),
           "val": final["val_accuracy"], "test": final["accuracy"], "base_val": base["val_accuracy"],
           "base_test": base["accuracy"], "ratio": final["compression_ratio"]}
    if run.session.out_dir and (run.session.out_dir / "auto.json").exists():
        import json
        auto = json.loads((run.session.out_dir / "auto.json").read_text())
        row["allocation"] = auto.get("allocation")
    if "latency" in name and failure is None:
        row["latency"] = latency_vs_baseline(run)
    return row


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean = statistics.mean(values)
    return f"{100 * mean:.2f} ({100 * min(values):.2f}-{100 * max(values):.2f})" if len(values) > 1 else f"{100 * mean:.2f}"


def main() -> int:
    import torch
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)         # a shared 2-core machine: two threads wait on each other (see the README)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, target, methods, extra) in ROWS.items():
            for seed in range(args.seeds):
                for allocation in ("best", "knapsack", "uniform"):
                    text = (f"model: {model}\ndata: sample:digits\nseed: {seed}\nstages:\n"
                            f"  - {{kind: auto, target: {target}, methods: {methods}, allocation: {allocation}, "
                            f"max_drop: 1.0, push: false, retries: 1, {extra}}}\n")
                    t0 = time.perf_counter()
                    run, failure = run_recipe(text, Path(tmp) / f"{name}-{seed}-{allocation}")
                    row = {**result(name, run, failure, time.perf_counter() - t0), "seed": seed, "allocation": allocation}
                    runs.append(row)
                    print(f"{name} seed {seed} {allocation}: ratio {row['ratio']:.1f}x, latency {row.get('latency')}, "
                          f"val {row['val']:.4f}, test {row['test']:.4f} ({row['seconds']} s){' FAILED ' + failure if failure else ''}",
                          flush=True)
        t0 = time.perf_counter()
        hand, failure = run_recipe((ROOT / "resources" / "recipes" / "deep_compression.yaml").read_text(), Path(tmp) / "hand")
        hand_row = {**result("hand", hand, failure, time.perf_counter() - t0), "seed": 0, "allocation": "hand recipe"}
        hand_drop = max(0.0, hand_row["base_val"] - hand_row["val"])
        text = (f"model: sample:digits_mlp\ndata: sample:digits\nseed: 0\nstages:\n"
                f"  - {{kind: auto, target: {{ratio: {hand_row['ratio']:.2f}}}, max_drop: {hand_drop:.4f}, epochs: 150, "
                f"finetune_epochs: 40, centroid_epochs: 3}}\n  - {{kind: export, formats: [packed]}}\n")
        t0 = time.perf_counter()
        at_hand, failure = run_recipe(text, Path(tmp) / "at_hand")
        auto_row = {**result("auto at the hand recipe's accuracy", at_hand, failure, time.perf_counter() - t0),
                    "seed": 0, "allocation": "knapsack, push"}
    summary = []
    for name in ROWS:
        for allocation in ("best", "knapsack", "uniform"):
            rows = [r for r in runs if r["row"] == name and r["allocation"] == allocation and not r["failed"]]
            cost = (f"{statistics.median(r['latency'] for r in rows):.3f} of the latency" if "latency" in name and rows
                    else f"{statistics.median(r['ratio'] for r in rows):.1f}x" if rows else "n/a")
            summary.append({"row": name, "allocation": allocation, "measured": cost, "seeds": len(rows),
                            "val": spread([r["val"] for r in rows]), "test": spread([r["test"] for r in rows])})
    for r in (hand_row, auto_row):
        summary.append({"row": "mlp vs hand recipe", "allocation": r["allocation"],
                        "measured": f"{r['ratio']:.1f}x" if not r["failed"] else "failed: " + r["failed"], "seeds": 1,
                        "val": spread([r["val"]]), "test": spread([r["test"]])})
    print("\nAt equal budget (mean and min-max over seeds, accuracy in %):\n")
    print(table(summary, [("row", "budget", ""), ("allocation", "allocation", ""), ("measured", "measured", ""),
                          ("seeds", "seeds", ""), ("val", "val accuracy", ""), ("test", "test accuracy", "")]))
    base = runs[0]
    print(f"\nbaselines: MLP val {100 * base['base_val']:.2f} / test {100 * base['base_test']:.2f} (seed 0)")
    path = write_result("auto", {"runs": runs, "hand": hand_row, "auto_at_hand": auto_row, "summary": summary})
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
