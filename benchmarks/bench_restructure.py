"""Restructuring: parameters, FLOPs and measured CPU latency of low-rank, depthwise separable and BN-folded models.

(a) `torchvision:resnet18` (random weights, 224x224, batch 1): the original and each restructured
    model (the `restructure` stage's code on every eligible layer except the classifier), timed in the
    same run, interleaved (median of rounds), so machine load hits them alike.
(b) `resources/recipes/depthwise_distill.yaml` on `sample:digits_resnet`: test accuracy of each snapshot
    (depthwise replacement, recovery by distillation from the original, BN folding).

    python benchmarks/bench_restructure.py [--rounds 7] [--repeats 5] [--skip-recipe]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

from prune_bench_common import table, write_result

from workbench.core.run_handle import RunOptions


def _restructured(model, method: str, **settings):
    """A restructured copy: every eligible layer but the classifier, as the `restructure` stage does."""
    import torch

    from workbench.core.pruning.layers import classifier_name
    from workbench.core.restructure.apply import eligible_layers, restructure
    model = copy.deepcopy(model).eval()
    classifier = classifier_name(model, torch.randn(1, 3, 224, 224))
    restructure(model, method, [n for n in eligible_layers(model, method) if n != classifier], **settings)
    return model


def resnet18_table(rounds: int, repeats: int) -> list[dict]:
    import torch

    from workbench.core.metrics import denormals_flushed, flops_per_module
    from workbench.core.specs import load_model
    torch.manual_seed(0)
    original = load_model("torchvision:resnet18").module.eval()
    x = torch.randn(1, 3, 224, 224)
    models = {"original": original,
              "fold_bn (exact)": _restructured(original, "fold_bn"),
              "lowrank, rank 1/4": _restructured(original, "lowrank", rank=0.25),
              "depthwise separable 3x3": _restructured(original, "depthwise")}
    times = {k: [] for k in models}
    with denormals_flushed(), torch.inference_mode():
        for m in models.values():
            m(x)
        for _ in range(rounds):
            for name, m in models.items():
                t = time.perf_counter()
                for _ in range(repeats):
                    m(x)
                times[name].append((time.perf_counter() - t) / repeats * 1000)
        ref = original(x)
        rows = []
        for name, m in models.items():
            flops, _ = flops_per_module(m, x)
            rows.append({"model": name, "params": sum(p.numel() for p in m.parameters()), "gflops": flops / 1e9,
                         "latency_ms": statistics.median(times[name]), "max_diff": float((m(x) - ref).abs().max())})
    base = rows[0]
    for r in rows:
        r["flops_ratio"] = base["gflops"] / r["gflops"]
        r["speedup"] = base["latency_ms"] / r["latency_ms"]
    return rows


def recipe_table() -> list[dict]:
    from prune_bench_common import ROOT

    from workbench.core.events import StageFailed
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run
    run = Run(Recipe.load(ROOT / "resources" / "recipes" / "depthwise_distill.yaml"), RunOptions(out_dir=tempfile.mkdtemp()))
    for event in run.events():
        if isinstance(event, StageFailed):
            raise RuntimeError(event.message)
    return [{"snapshot": f"{r['index']} {r['stage']}", "accuracy": 100 * r["accuracy"], "params": r["params"],
             "mflops": r["flops"] / 1e6, "latency_ms": r["latency_ms"]} for r in run.report.data["snapshots"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-recipe", action="store_true")
    args = ap.parse_args()
    rows = resnet18_table(args.rounds, args.repeats)
    print("torchvision:resnet18, random weights, 1x3x224x224, CPU, interleaved, median of "
          f"{args.rounds} rounds x {args.repeats} runs\n")
    print(table(rows, [("model", "model", ""), ("params", "params", ","), ("gflops", "GFLOPs", ".2f"),
                       ("flops_ratio", "FLOPs ratio", ".2f"), ("latency_ms", "latency ms", ".1f"),
                       ("speedup", "speed-up", ".2f"), ("max_diff", "max |output diff|", ".2g")]))
    recipe = [] if args.skip_recipe else recipe_table()
    if recipe:
        print("\nresources/recipes/depthwise_distill.yaml on sample:digits_resnet\n")
        print(table(recipe, [("snapshot", "snapshot", ""), ("accuracy", "test acc %", ".2f"), ("params", "params", ","),
                             ("mflops", "MFLOPs", ".2f"), ("latency_ms", "latency ms", ".2f")]))
    print("wrote", write_result("restructure", {"resnet18": rows, "depthwise_distill": recipe}))


if __name__ == "__main__":
    main()
