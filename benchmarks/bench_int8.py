"""(b) int8 post-training quantization (torch.ao FX, x86 backend) against fp32 on the CPU.

1. `torchvision:resnet18` (random weights, 224x224, batch 1): fp32 and static int8 (calibrated on a
   few random batches) timed in the same run, rounds interleaved so that load from other processes
   hits both alike; state-dict file sizes written and read back.
2. Accuracy change on `sample:digits_resnet` (int8_static) and `sample:digits_mlp` (int8_dynamic),
   through the quantize stage itself, with their latencies.
FLOPs are those torch's FlopCounterMode reports; it counts no quantized ops, so int8 shows none (null in the JSON).

    python benchmarks/bench_int8.py [--rounds 7] [--repeats 10] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from prune_bench_common import ROOT, table, write_result


def resnet18_speed(rounds: int, repeats: int) -> list[dict]:
    import torch

    from workbench.core.export import ExportSource, export_model
    from workbench.core.metrics import flops_per_module, latency_ms
    from workbench.core.quantization import int8
    from workbench.core.specs import load_model

    loaded = load_model("torchvision:resnet18")
    model = loaded.module.eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 224, 224, generator=gen)
    prepared = int8.prepare_static(model, x)
    calib = [(torch.randn(4, 3, 224, 224, generator=gen), None) for _ in range(4)]
    list(int8.calibrate(prepared, calib, len(calib)))
    qmodel = int8.convert(prepared)
    int8.check_runs(qmodel, x)
    models = {"fp32": model, "int8 static": qmodel}
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, m in models.items():
            with int8.ao_quiet():
                times[name].append(latency_ms(m, x, warmup=2, repeats=repeats))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, m in models.items():
            record = {**loaded.record, "transforms": [{"op": "int8_static", "input_shape": [3, 224, 224]}]} \
                if m is qmodel else loaded.record
            with int8.ao_quiet():
                res = export_model(ExportSource(m, record, {}, x), "state_dict", Path(tmp) / f"{len(rows)}.pt")
            rows.append({"model": f"resnet18 {name}", "latency_ms": statistics.median(times[name]),
                         "file_bytes": res.bytes, "verified": res.verified, "flops": None if m is qmodel else flops_per_module(m, x)[0],
                         "float_ops": ", ".join(int8.float_islands(m)) if m is qmodel else ""})
    rows[1]["speedup"] = rows[0]["latency_ms"] / rows[1]["latency_ms"]
    return rows


def digits_accuracy() -> list[dict]:
    from workbench.core import stages
    from workbench.core.data import load_data
    from workbench.core.metrics import accuracy, latency_ms
    from workbench.core.recipe import parse_stage
    from workbench.core.session import Session
    from workbench.core.specs import load_model

    data = load_data("sample:digits")
    rows = []
    for spec, method in (("sample:digits_resnet", "int8_static"), ("sample:digits_mlp", "int8_dynamic")):
        session = Session(load_model(spec, data.input_shape, data.num_classes), data, "cpu", 0)
        x = data.example_input(1)
        before, fp_ms = accuracy(session.model, data.test), latency_ms(session.model, x, repeats=200)
        stage = parse_stage({"kind": "quantize", "method": method}, "stages[0]")
        for _ in stages.get("quantize").run(session, stage.params):
            pass
        after, q_ms = accuracy(session.model, data.test), latency_ms(session.model, x, repeats=200)
        rows.append({"model": spec, "method": method, "fp32_accuracy": 100 * before, "int8_accuracy": 100 * after,
                     "change": 100 * (after - before), "fp32_ms": fp_ms, "int8_ms": q_ms})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    speed = resnet18_speed(args.rounds, args.repeats)
    print(f"int8 vs fp32, torchvision:resnet18, 224x224, batch 1, CPU, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} rounds x {args.repeats} runs\n")
    print(table(speed, [("model", "model", ""), ("latency_ms", "latency ms", ".2f"), ("speedup", "speed-up", ".2f"),
                        ("file_bytes", "state_dict bytes", ","), ("verified", "verified", ""),
                        ("flops", "FLOPs counted", ","), ("float_ops", "ops left in float", "")]))
    acc = digits_accuracy()
    print("\nAccuracy on sample:digits (test split), batch-1 latency\n")
    print(table(acc, [("model", "model", ""), ("method", "method", ""), ("fp32_accuracy", "fp32 %", ".2f"),
                      ("int8_accuracy", "int8 %", ".2f"), ("change", "change (points)", "+.2f"),
                      ("fp32_ms", "fp32 ms", ".3f"), ("int8_ms", "int8 ms", ".3f")]))
    path = write_result("int8", {"resnet18": speed, "digits": acc, "rounds": args.rounds, "repeats": args.repeats})
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
