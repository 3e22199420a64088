"""The `auto` stage aiming at a deploy runtime (issue 19 item 3, "done when"): `runtime: onnxruntime` with an auto
stage at `latency: 0.1` and `methods: [structured, int8]` on a trained sample model, within its val budget.

Reports whether the stage reached its target, the stage's own figure (the snapshot's `latency_ratio`: the chosen
candidate quantized by onnxruntime (onnx_int8) against the stage input, both in onnxruntime, alternating, with p10-p90)
and, measured again here in one process, alternating: the same against the original on onnxruntime and against the
original in eager fp32. When nothing met both target and val budget, the best candidate the search found.

    python benchmarks/bench_auto_runtime.py                          # sample:digits_resnet, latency 0.1
    python benchmarks/bench_auto_runtime.py --model sample:digits_cnn --target 0.3
    python benchmarks/bench_auto_runtime.py --model arch:resnet8:width=64 --image-size 32 --train-epochs 8 \
        --epochs 24 --finetune 6 --max-drop 0.01   # trained here first (train -> auto), compute-bound on onnxruntime

With `--train-epochs N` the recipe trains the (untrained) model first with the tool's own `train` stage; the stage
input (and the "original" re-timed here) is then the trained snapshot, and test accuracy is reported before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

from prune_bench_common import ROOT, table, write_result

from workbench.core.run_handle import RunOptions

TRAIN = "  - {{kind: train, epochs: {epochs}, batch_size: 32, schedule: cosine}}\n"
STAGE = ("  - {{kind: auto, target: {{latency: {target}}}, max_drop: {drop}, methods: [structured, int8], "
         "epochs: {epochs}, finetune_epochs: {finetune}, channels: [0.0, 0.25, 0.5, 0.625, 0.75, 0.875], "
         "max_candidates: {candidates}}}\n")


def again(run, out: Path, first: int) -> dict:
    """The final snapshot (its float model quantized by onnx_int8, as the stage timed it) against the original on
    onnxruntime and in eager fp32, alternating in this process."""
    from workbench.core import runtimes
    from workbench.core.export import calibration_inputs
    from workbench.core.latency import ratio_stats
    from workbench.core.metrics import accuracy
    from workbench.core.snapshots import load_snapshot
    from workbench.core.stages._auto_runtime import onnx_int8_session
    s = run.session
    x = s.example_input(1).cpu()
    base = load_snapshot(s.snapshot_paths[first]).module.eval()
    final = load_snapshot(s.snapshot_paths[-1]).module.eval()
    int8 = onnx_int8_session(final, x, calibration_inputs(s.data))
    base_ort = runtimes.get("onnxruntime").prepare(base, x)
    return {"vs_original_onnxruntime": ratio_stats(int8, base_ort, x, runtime="onnxruntime"),
            "vs_original_eager_fp32": ratio_stats(int8, base, x, runtime="onnxruntime vs eager"),
            "int8_val": accuracy(int8, s.data.val), "int8_test": accuracy(int8, s.data.test)}


def main() -> int:
    import torch

    from workbench.core.events import Log, StageFailed
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sample:digits_resnet")
    parser.add_argument("--data", default="sample:digits")
    parser.add_argument("--image-size", type=int, default=None, help="data image_size (resize), e.g. 32")
    parser.add_argument("--train-epochs", type=int, default=0, help="train the model first (train -> auto)")
    parser.add_argument("--target", type=float, default=0.1)
    parser.add_argument("--max-drop", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--finetune", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)            # a shared 2-core machine (see the README)
    data = f"{{spec: {args.data}, image_size: {args.image_size}}}" if args.image_size else args.data
    text = (f"model: {args.model}\ndata: {data}\nseed: 0\nruntime: onnxruntime\nstages:\n" +
            (TRAIN.format(epochs=args.train_epochs) if args.train_epochs else "") +
            STAGE.format(target=args.target, drop=args.max_drop, epochs=args.epochs, finetune=args.finetune,
                         candidates=args.candidates))
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        run = Run(Recipe.from_text(text), RunOptions(out_dir=out))
        events = list(run.events())
        seconds = time.perf_counter() - t0
        failed = next((e.message for e in events if isinstance(e, StageFailed)), None)
        auto = json.loads((out / "auto.json").read_text()) if (out / "auto.json").exists() else {}
        snaps = run.report.data["snapshots"]
        first = max(i for i, sn in enumerate(snaps) if sn["stage"] != "auto")    # the auto stage's input
        row: dict = {"model": args.model, "data": data, "train_epochs": args.train_epochs, "target": args.target,
                     "max_drop": args.max_drop, "reached": failed is None, "failure": failed,
                     "seconds": round(seconds, 1), "loadavg_start": load_start, "base_val": snaps[first]["val_accuracy"],
                     "base_test": snaps[first]["accuracy"], "base_ms": snaps[first]["latency"],
                     "candidates": auto.get("candidates"), "int8": auto.get("int8")}
        logs = [e.text for e in events if isinstance(e, Log) and ("latency on onnxruntime" in e.text
                                                                  or "alone" in e.text or "candidate" in e.text
                                                                  or e.text.startswith("trial"))]
        if failed is None:
            claim = snaps[-1]["latency_ratio"]
            chosen = auto["candidates"][auto["chosen"]]
            row.update(claim=claim, val=chosen["val_accuracy"], drop=chosen["drop"], test=snaps[-1]["accuracy"],
                       **again(run, out, first))
    print("\n".join(logs))
    cands = row["candidates"] or []
    summary = [{"candidate": i + 1, "measured": c.get("measured"), "fraction": (c.get("measured") or 0) / (
        auto["baseline"]["cost"] or 1), "val": c.get("val_accuracy"), "drop": c.get("drop"),
        "ok": c.get("meets_target") and c.get("meets_drop")} for i, c in enumerate(cands)]
    print(f"\n{args.model}, runtime onnxruntime, auto latency {args.target}, max_drop {args.max_drop}: "
          f"{'REACHED' if row['reached'] else 'NOT reached: ' + str(row['failure'])} ({row['seconds']} s)\n")
    print(table(summary, [("candidate", "candidate", ""), ("measured", "ms on onnxruntime", ".4f"),
                          ("fraction", "of the stage input", ".3f"), ("val", "val accuracy", ".4f"),
                          ("drop", "drop", "+.4f"), ("ok", "meets both", "")]))
    for key in ("claim", "vs_original_onnxruntime", "vs_original_eager_fp32"):
        if key in row:
            c = row[key]
            print(f"{key}: {c['value']:.3f} (p10-p90 {c['p10']:.3f}-{c['p90']:.3f}, {c['repeats']} pairs)"
                  f"{' noisy' if c.get('noisy') else ''}")
    print(f"val {row['base_val']:.4f} -> {row.get('val')} (int8 on onnxruntime {row.get('int8_val')}), test "
          f"{row['base_test']:.4f} -> {row.get('test')} float, {row.get('int8_test')} int8 on onnxruntime; "
          f"load average at start {load_start}")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.model.removeprefix("sample:"))
    path = write_result(f"auto_runtime_{name}_{args.target:g}", row)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
