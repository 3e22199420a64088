"""Fine-tuning throughput on a GPU in fp32, bf16 and fp16 (with and without channels_last), for a device run.

Runs the `train` stage's loop (`workbench.core.training.fit`) on `torchvision:resnet50` over `fake:` data at
224x224 for one epoch per setting, alternating, and reports samples per second and the ratio to fp32.
Without CUDA it says so and exits 0 (the loop itself is tested on the CPU).

    python benchmarks/bench_gpu_precision.py [--model torchvision:resnet50] [--samples 2048] [--batch 128]
"""
from __future__ import annotations

import argparse
import time

from prune_bench_common import table, write_result

from workbench.core.run_handle import RunOptions

SETTINGS = [("fp32", False), ("bf16", False), ("fp16", False), ("fp32", True), ("bf16", True), ("fp16", True)]


def one_epoch(model_spec: str, data_spec: str, precision: str, channels_last: bool, batch: int) -> tuple[float, float]:
    import torch

    from workbench.core.recipe import Recipe
    from workbench.core.runner import prepare
    from workbench.core.training import fit
    recipe = Recipe.from_dict({"model": model_spec, "data": {"spec": data_spec, "batch_size": batch, "val_fraction": 0.0},
                               "precision": precision, "channels_last": channels_last, "stages": []})
    session = prepare(recipe, RunOptions(device="cuda", out_dir="/tmp/workbench-bench-gpu"))
    n = session.data.splits["train"]
    for _ in fit(session, 1, 1e-3, "sgd", evaluate=False):   # warm-up epoch (cudnn autotuning, allocator)
        pass
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in fit(session, 1, 1e-3, "sgd", evaluate=False):
        pass
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return n / seconds, seconds


def main() -> None:
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="torchvision:resnet50")
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: run this on a machine with a GPU")
        return
    data = f"fake:3x224x224:1000:{args.samples}"
    rows = []
    for precision, nhwc in SETTINGS:
        rate, seconds = one_epoch(args.model, data, precision, nhwc, args.batch)
        rows.append({"precision": precision, "channels_last": nhwc, "samples_per_s": rate, "epoch_s": seconds})
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base
    print(f"\n{args.model}, one fine-tuning epoch of {args.samples} samples at 224x224, batch {args.batch}, "
          f"{torch.cuda.get_device_name()}\n")
    print(table(rows, [("precision", "precision", ""), ("channels_last", "channels_last", ""),
                       ("samples_per_s", "samples/s", ".0f"), ("speedup", "vs fp32", ".2f"), ("epoch_s", "epoch s", ".1f")]))
    write_result("gpu_precision", {"model": args.model, "samples": args.samples, "batch": args.batch,
                                   "gpu": torch.cuda.get_device_name(), "rows": rows})


if __name__ == "__main__":
    main()
