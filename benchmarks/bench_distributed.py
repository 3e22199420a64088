"""Fine-tuning throughput at 1 and N processes: `workbench run --nproc N` against a single process, same recipe.

The recipe trains `--model` for `--epochs` on `fake:` data (3x64x64 by default); the `train` stage's time comes
from report.json (`seconds` of its snapshot), samples per second = epochs x training samples / seconds. On a CPU
machine each process gets OMP_NUM_THREADS = cores / N; with `--device cuda`, one GPU per process (nccl).
Runs alternate (1, N, 1, N, ...) and the median is reported, because the machine may be shared.

    python benchmarks/bench_distributed.py [--nproc 2] [--device cpu|cuda] [--model torchvision:resnet18]
                                           [--samples 2048] [--size 64] [--epochs 1] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from prune_bench_common import ROOT, table, write_result


def one_run(procs: int, args, folder: Path) -> float:
    recipe = folder / "r.yaml"
    recipe.write_text(f"model: {args.model}\ndata: {{spec: 'fake:3x{args.size}x{args.size}:10:{args.samples}', "
                      f"batch_size: {args.batch}, val_fraction: 0.05}}\n"
                      f"stages:\n  - {{kind: train, epochs: {args.epochs}, lr: 0.01, optimizer: sgd}}\n")
    out = folder / f"run-{procs}-{len(list(folder.iterdir()))}"
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // procs))}
    cmd = [sys.executable, "-m", "workbench", "run", str(recipe), "--out", str(out), "--quiet", "--device", args.device]
    if procs > 1:
        cmd += ["--nproc", str(procs)]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True)
    report = json.loads((out / "report.json").read_text())
    train = report["snapshots"][1]
    return args.epochs * report["splits"]["train"] / train["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="torchvision:resnet18")
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rates: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for procs in (1, args.nproc):
                rates[procs].append(one_run(procs, args, Path(tmp)))
    rows = [{"processes": p, "samples_per_s": statistics.median(r), "runs": len(r)} for p, r in rates.items()]
    for row in rows:
        row["speedup"] = row["samples_per_s"] / rows[0]["samples_per_s"]
    print(f"\n{args.model} fine-tuning on {args.samples} samples of 3x{args.size}x{args.size}, batch {args.batch} "
          f"(per process: {args.batch} / N), {args.epochs} epoch(s), device {args.device}, "
          f"{os.cpu_count()} cores; median of {args.rounds} alternating runs\n")
    print(table(rows, [("processes", "processes", ""), ("samples_per_s", "samples/s", ".1f"), ("speedup", "vs 1", ".2f")]))
    write_result("distributed", {"model": args.model, "device": args.device, "samples": args.samples, "size": args.size,
                                 "batch": args.batch, "epochs": args.epochs, "rows": rows})


if __name__ == "__main__":
    main()
