"""(b) Structured vs unstructured pruning speed: `torchvision:resnet18`, random weights, 224x224, batch 1, CPU.

Three models measured in the same run, their timings interleaved round by round so that load from
other processes hits all of them alike:
- original;
- structured: 50% of the channels of every layer removed (L1 norm, torch-pruning; fc outputs kept);
- unstructured: 90% of the weights zeroed (global magnitude); same shapes, dense kernels.
Target: structured >= 2x faster than the original. MACs = FLOPs / 2 (torch FlopCounterMode).

    python benchmarks/bench_prune_speed.py [--rounds 7] [--repeats 10] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

from prune_bench_common import table, write_result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    from workbench.core.metrics import count_params, flops_per_module
    from workbench.core.pruning import structured, unstructured
    from workbench.core.pruning.layers import classifier_name, prunable_layers, weight_sparsity
    from workbench.core.specs import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (3, args.size, args.size)
    x = torch.randn(1, *shape)
    original = load_model(f"torchvision:{args.model}", shape, 1000).module.eval()
    slim = load_model(f"torchvision:{args.model}", shape, 1000).module.eval()
    slim.load_state_dict(original.state_dict())
    t0 = time.perf_counter()
    structured.prune_once(slim, x, 0.5, "l1")
    prune_seconds = time.perf_counter() - t0
    sparse = load_model(f"torchvision:{args.model}", shape, 1000).module.eval()
    sparse.load_state_dict(original.state_dict())
    layers = prunable_layers(sparse)
    plan = unstructured.make_plan(list(layers), 0.9, "global", {}, [], classifier_name(sparse, x), 1.0)
    masks = unstructured.compute_masks(layers, {n: m.weight.abs() for n, m in layers.items()}, plan, {})
    unstructured.apply(sparse, masks)

    models = {"original": original, "structured 50% channels": slim, "unstructured 90% weights": sparse}
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():
            for _ in range(3):
                m(x)
        for _ in range(args.rounds):
            for name, m in models.items():
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    m(x)
                    times[name].append(time.perf_counter() - t)
    rows = []
    base = None
    for name, m in models.items():
        params, nonzero = count_params(m)
        macs = flops_per_module(m, x)[0] // 2
        ms = statistics.median(times[name]) * 1000
        base = base or {"ms": ms, "macs": macs, "params": params}
        rows.append({"model": name, "params": params, "nonzero": nonzero, "sparsity": weight_sparsity(m),
                     "macs": macs, "mac_ratio": base["macs"] / macs, "param_ratio": base["params"] / params,
                     "latency_ms": ms, "p10_ms": 1000 * sorted(times[name])[len(times[name]) // 10],
                     "speedup": base["ms"] / ms, "output_shape": list(m(x).shape)})
    print(table(rows, [("model", "model", ""), ("params", "params", ","), ("nonzero", "non-zero", ","),
                       ("macs", "MACs", ","), ("mac_ratio", "MACs ratio", ".2f"),
                       ("latency_ms", "median latency (ms)", ".2f"), ("speedup", "speed-up", ".2f")]))
    ok = rows[1]["speedup"] >= 2.0
    result = {"model": f"torchvision:{args.model}", "input": [1, *shape], "threads": torch.get_num_threads(),
              "rounds": args.rounds, "repeats": args.repeats, "prune_seconds": prune_seconds, "rows": rows,
              "pass": ok}
    print(f"structured speed-up {rows[1]['speedup']:.2f}x (target >= 2x): {'PASS' if ok else 'FAIL'}")
    print(f"wrote {write_result('prune_speed', result)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
