"""Channel counts the hardware likes: depthwise-heavy nets pruned 50 % with `round_to: 1` and `round_to: auto`.

For each model (torchvision mobilenet_v2, timm efficientnet_b0; random weights, 224 px): structured pruning at 50 %
of each layer's channels (L1, layer scope, one step) with each multiple `round_to: auto` chooses among (1, 4, 8,
16); auto's choice is made as the prune stage makes it (`rounding.choose`: copies timed alternately at batch 1,
one thread), and marked. Then, in one process, alternately (original, each pruned model, ...), batch 1,
one thread (`latency.alternating_ms`): the eager speed-up against the original (median of the per-round ratios,
with p10-p90), against its MAC limit (MACs of the original / MACs of the pruned model, counted exactly):
efficiency = speed-up / MAC limit.

    python benchmarks/bench_round_to.py [--models mobilenet_v2 efficientnet_b0] [--repeats 40]

Written: benchmarks/results/round_to.json.
"""
from __future__ import annotations

import argparse
import copy
import warnings

import torch
from alternating import ratios
from prune_bench_common import table, write_result

from workbench.core.latency import alternating_ms
from workbench.core.metrics import flops_per_module
from workbench.core.pruning import rounding, structured
from workbench.core.pruning.importance import structured_importance
from workbench.core.pruning.layers import classifier_name


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "mobilenet_v2":
        import torchvision
        return torchvision.models.mobilenet_v2().eval()
    import timm
    return timm.create_model(name).eval()


def pruned(model: torch.nn.Module, x: torch.Tensor, multiple: int) -> torch.nn.Module:
    copy_ = copy.deepcopy(model).eval()
    classifier = classifier_name(copy_, x)
    modules = dict(copy_.named_modules())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = structured.make_pruner(copy_, x, structured_importance("l1"), 0.5, "layer", {},
                                        [modules[classifier]] if classifier else [], None, 1, multiple)
        with torch.no_grad():
            for _ in structured.step(pruner):
                pass
    return copy_


def auto_choice(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, str]:
    steps, log = rounding.choose(model, x, lambda m: pruned(model, x, m)), ""
    try:
        while True:
            event = next(steps)
            log = getattr(event, "text", log)
    except StopIteration as done:
        return int(done.value), log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "efficientnet_b0"])
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    x = torch.randn(1, 3, 224, 224)
    rows = []
    for name in args.models:
        model = build(name)
        chosen, log = auto_choice(model, x)
        print(f"{name}: {log}")
        variants = {multiple: pruned(model, x, multiple) for multiple in rounding.CANDIDATES}
        macs = flops_per_module(model, x)[0]
        times = alternating_ms([model, *variants.values()], x, repeats=args.repeats, max_seconds=120.0)
        for (multiple, m), t in zip(variants.items(), times[1:], strict=True):
            speed = ratios(times[0], t)                 # original / pruned, per round
            limit = macs / flops_per_module(m, x)[0]
            rows.append({"model": name, "round_to": multiple, "auto": "chosen" if multiple == chosen else "",
                         "params_m": sum(p.numel() for p in m.parameters()) / 1e6,
                         "mac_limit": limit, "speedup": speed["median"], "p10": speed["low"], "p90": speed["high"],
                         "efficiency": speed["median"] / limit, "n": speed["n"], "auto_log": log})
    print(table(rows, [("model", "model", ""), ("round_to", "round_to", "d"), ("auto", "auto", ""), ("params_m", "params M", ".2f"),
                       ("mac_limit", "MAC limit", ".2f"), ("speedup", "eager speed-up", ".2f"), ("p10", "p10", ".2f"),
                       ("p90", "p90", ".2f"), ("efficiency", "of the MAC limit", ".0%"), ("n", "n", "d")]))
    path = write_result("round_to", {"batch": 1, "threads": 1, "image": 224, "sparsity": 0.5, "rows": rows})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
