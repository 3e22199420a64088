"""Every torchvision classification model through `workbench inspect` (random weights, 224x224, batch 1).

For each name in `torchvision.models.list_models(module=torchvision.models)` this times what the
model browser and `workbench inspect SPEC --json` do: build the model (`load_model`), then the
per-layer table and the FLOPs of one forward pass (`inspect_loaded`: parameters, non-zeros,
sparsity, `FlopCounterMode` per module). It checks that the table's parameter total equals
`sum(p.numel())` of the model. Load time and table time are reported apart, since building a large
model with random initialisation costs more than inspecting it.

    python benchmarks/bench_inspect_all_torchvision.py [--only resnet18,vgg16]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time
import traceback

from prune_bench_common import table, write_result


def one(name: str) -> dict:
    import torch

    from workbench.core.inspection import inspect_loaded
    from workbench.core.specs import load_model

    torch.manual_seed(0)
    row: dict = {"model": name}
    start = time.perf_counter()
    try:
        loaded = load_model(f"torchvision:{name}")
        row["load_s"] = time.perf_counter() - start
        mid = time.perf_counter()
        with torch.no_grad():
            info = inspect_loaded(loaded)
        row["inspect_s"] = time.perf_counter() - mid
        params = sum(p.numel() for p in loaded.module.parameters())
        row.update(result="ok" if info["total"]["params"] == params else "params mismatch",
                   input=info["input_shape"][-1], params_m=params / 1e6, gflops=info["total"]["flops"] / 1e9,
                   layers=len(info["layers"]))
    except Exception as exc:  # noqa: BLE001 - a benchmark row, not a crash: the error is the result
        row.update(result="error", error=f"{type(exc).__name__}: {exc}"[:160])
        traceback.print_exc()
    row["total_s"] = time.perf_counter() - start
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated model names")
    args = ap.parse_args()
    from workbench.core.models import torchvision_names
    names = args.only.split(",") if args.only else torchvision_names()
    rows = []
    for name in names:
        rows.append(one(name))
        r = rows[-1]
        print(f"{name:24s} {r['result']:6s} {r['total_s']:7.2f} s", flush=True)
        gc.collect()
    cols = [("model", "model", ""), ("result", "result", ""), ("input", "input", ""), ("params_m", "params (M)", ".1f"),
            ("gflops", "GFLOPs", ".2f"), ("layers", "layers with params", ""), ("load_s", "build (s)", ".2f"),
            ("inspect_s", "table + FLOPs (s)", ".2f"), ("total_s", "total (s)", ".2f"), ("error", "error", "")]
    print()
    print(table(rows, cols))
    ok = [r for r in rows if r["result"] == "ok"]
    summary = {"models": len(rows), "ok": len(ok),
               "median_inspect_s": statistics.median(r["inspect_s"] for r in ok) if ok else None,
               "max_inspect_s": max((r["inspect_s"] for r in ok), default=None),
               "max_total_s": max((r["total_s"] for r in ok), default=None),
               "all_s": sum(r["total_s"] for r in rows)}
    print(f"\n{summary['ok']} of {summary['models']} inspected; table + FLOPs median {summary['median_inspect_s']:.2f} s, "
          f"max {summary['max_inspect_s']:.2f} s; slowest model in all {summary['max_total_s']:.2f} s; "
          f"whole list {summary['all_s']:.0f} s")
    if not args.only:
        print("wrote", write_result("inspect_all_torchvision", {"summary": summary, "rows": rows}))


if __name__ == "__main__":
    main()
