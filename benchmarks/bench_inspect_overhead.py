"""What `workbench inspect` costs beyond building the model and running it once.

In one process, alternately (A/B/C, A/B/C, ...), one torch thread (`--threads 0`: torch's default, what
`workbench inspect` runs with; noisier on a shared machine):
- `construct + forward`: the torchvision model built with random weights, one forward pass at batch 1 (no grad);
- `inspect`: `inspection.inspect(spec)`: the same model built, FLOPs counted in one forward pass (`FlopCounter`),
  the per-layer table (parameters, non-zeros); the size check's meta build is remembered from the first call, as
  when the GUI or a script inspects a model again;
- `inspect, first in the process`: the same with the meta build (the size check) made again each time;
- `inspect as before`: what it did until issue 19: the initial weights copied (for a rewind that inspecting never
  does), FLOPs counted twice with `FlopCounterMode` (through the layer table and again for the total), the meta
  build's initialisations dispatched (not emulated here: the meta build is today's), each weight's non-zeros
  counted twice with `torch.count_nonzero`.
Reported: the median time of each and the per-round ratio to `construct + forward` with its spread.
Target: inspect <= 1.2x construct + forward on resnet50.

    python benchmarks/bench_inspect_overhead.py [--models resnet50 resnet18] [--repeats 12] [--threads N]

Written: benchmarks/results/inspect_overhead.json.
"""
from __future__ import annotations

import argparse

import torch
from alternating import alternate, ratios, spread
from prune_bench_common import table, write_result

from workbench.core import inspection, metrics, models
from workbench.core.specs import load_model

TARGET = 1.2


def jobs(name: str) -> dict:
    import torchvision
    spec = f"torchvision:{name}"
    x = torch.randn(1, 3, 224, 224)

    def plain() -> None:
        torch.manual_seed(0)
        model = torchvision.models.get_model(name).eval()
        with torch.no_grad():
            model(x)

    def before() -> None:
        loaded = load_model(spec)                      # keep_init: the copy of the initial weights
        example = inspection.example_for(loaded)
        for _ in range(2):                             # through the layer table, then for the total
            metrics._flops_by_flop_counter_mode(loaded.module.eval(), example)    # FlopCounterMode, as before
        for _, m in metrics.layer_modules(loaded.module):
            for t in metrics.layer_tensors(m).values():
                for _ in range(2):                     # every tensor's non-zeros, then the weight's again
                    torch.count_nonzero(t)

    def first() -> None:
        models._meta_size.cache_clear()                # the architecture's size not known yet: the meta build
        inspection.inspect(spec)

    return {"construct + forward": plain, "inspect": lambda: inspection.inspect(spec),
            "inspect, first in the process": first, "inspect as before": before}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet18"])
    ap.add_argument("--repeats", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        work = jobs(name)
        for job in work.values():                      # imports, first-call costs
            job()
        times = alternate(work, args.repeats)
        base = times["construct + forward"]
        for label, t in times.items():
            s = spread(t)
            r = ratios(t, base)
            rows.append({"model": name, "what": label, "median_ms": 1000 * s["median"], "ratio": r["median"],
                         "ratio_low": r["low"], "ratio_high": r["high"], "n": s["n"]})
    print(table(rows, [("model", "model", ""), ("what", "", ""), ("median_ms", "median ms", ".0f"),
                       ("ratio", "x construct + forward", ".2f"), ("ratio_low", "p10", ".2f"),
                       ("ratio_high", "p90", ".2f"), ("n", "n", "d")]))
    path = write_result("inspect_overhead", {"target": TARGET, "threads": torch.get_num_threads(), "rows": rows})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
