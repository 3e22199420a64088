"""Distillation on the digits: a small student trained alone against the same student taught by a teacher.

Teacher `sample:digits_teacher` (ResNet-8 at width 32, 308k parameters); student `arch:resnet8:width=8`
(19.8k parameters, 15x fewer), trained from scratch by the `distill` stage with the same optimiser,
epochs, data order and seed in every row; "student alone" is the same stage with alpha = 0 (labels
only). Each row is run with several seeds (initialisation and data order), mean and spread reported.

    python benchmarks/bench_distill.py [--epochs 10] [--seeds 0,1,2] [--only kd,fitnet]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from prune_bench_common import table, write_result

from workbench.core.run_handle import RunOptions

TEACHER, STUDENT = "sample:digits_teacher", "arch:resnet8:width=8"
VARIANTS = {
    "alone": ("student alone (labels only)", {"alpha": 0.0}),
    "kd": ("KD: soft targets, T=4, alpha=0.9", {}),
    "fitnet": ("KD + FitNet hint (layer3)", {"losses": {"logits": 1, "fitnet": 1}, "pairs": [["layer3", "layer3"]]}),
    "attention": ("KD + attention transfer (layer2, layer3)",
                  {"losses": {"logits": 1, "attention": 1000}, "pairs": [["layer2", "layer2"], ["layer3", "layer3"]]}),
    "sp": ("KD + similarity-preserving (layer3)", {"losses": {"logits": 1, "sp": 3000}, "pairs": [["layer3", "layer3"]]}),
    "rkd": ("KD + relational (layer3)", {"losses": {"logits": 1, "rkd": 1}, "pairs": [["layer3", "layer3"]]}),
}


def one(settings: dict, epochs: int, seed: int) -> dict:
    from workbench.core.events import StageFailed
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run
    stage = {"kind": "distill", "teacher": "input", "student": STUDENT, "temperature": 4.0, "alpha": 0.9,
             "epochs": epochs, "lr": 0.003, "optimizer": "adam", "schedule": "cosine", **settings}
    run = Run(Recipe.from_dict({"model": TEACHER, "data": "sample:digits", "stages": [stage]}),
              RunOptions(out_dir=tempfile.mkdtemp(prefix="wb-distill-"), seed=seed))
    start = time.perf_counter()
    for event in run.events():
        if isinstance(event, StageFailed):
            raise RuntimeError(event.message)
    rows = run.report.data["snapshots"]
    return {"teacher_acc": rows[0]["accuracy"], "teacher_params": rows[0]["params"], "acc": rows[-1]["accuracy"],
            "params": rows[-1]["params"], "seconds": time.perf_counter() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", help="comma-separated variants: " + ",".join(VARIANTS))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.only.split(",") if args.only else list(VARIANTS)
    rows, teacher = [], None
    for name in names:
        title, settings = VARIANTS[name]
        results = [one(settings, args.epochs, seed) for seed in seeds]
        teacher = results[0]
        accs = [r["acc"] for r in results]
        test_n = 359
        rows.append({"variant": title, "params": results[0]["params"], "acc": 100 * statistics.mean(accs),
                     "spread": 100 * (statistics.stdev(accs) if len(accs) > 1 else 0.0),
                     "errors": statistics.mean(round((1 - a) * test_n) for a in accs),
                     "per_seed": " / ".join(f"{100 * a:.2f}" for a in accs),
                     "seconds": statistics.mean(r["seconds"] for r in results)})
        print(f"{title:45s} {rows[-1]['acc']:.2f}% +- {rows[-1]['spread']:.2f}  ({rows[-1]['per_seed']})", flush=True)
    base = next((r["acc"] for r in rows if r["variant"].startswith("student alone")), None)
    for r in rows:
        r["gain"] = None if base is None else r["acc"] - base
    print(f"\nteacher {TEACHER}: {teacher['teacher_params']:,} parameters, test accuracy {100 * teacher['teacher_acc']:.2f}%; "
          f"student {STUDENT}, {args.epochs} epochs, seeds {args.seeds}\n")
    print(table(rows, [("variant", "student trained by", ""), ("params", "params", ","), ("acc", "test acc % (mean)", ".2f"),
                       ("spread", "std", ".2f"), ("gain", "vs alone (points)", "+.2f"), ("errors", "errors of 359", ".1f"),
                       ("per_seed", "per seed", ""), ("seconds", "s per run", ".0f")]))
    if not args.only:
        print("wrote", write_result("distill", {"teacher": TEACHER, "student": STUDENT, "epochs": args.epochs,
                                                "seeds": seeds, "teacher_accuracy": teacher["teacher_acc"], "rows": rows}))


if __name__ == "__main__":
    main()
