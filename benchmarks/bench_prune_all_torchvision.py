"""(c) Structured pruning attempted on every torchvision classification model.

For each name in `torchvision.models.list_models(module=torchvision.models)` (random weights,
1000 classes), a child process (one torch thread by default) builds the model at the smallest input
size it accepts (64, 128, 224 or 299 pixels, or the one given with --smaller), removes 50% of every
layer's channels with torch-pruning (L1 norm, the final classifier's outputs kept, the same code as
the `prune` stage: `structured.prune_once`), checks the output shape, replays the recorded pruning
history on a freshly built model (as loading a snapshot does: `structured.replay`, then the pruned
state dict) and compares outputs (all-zero initial weights such as ViT's head are randomised first,
so the comparison is not trivially 0 = 0), and measures params, MACs and batch-1 CPU latency before
and after (the two models timed alternately for 5 s, median of 3 to 200 passes each; wall time and
the process's CPU time). Each model has a time budget; models over --max-params parameters are
skipped with the reason.

    python benchmarks/bench_prune_all_torchvision.py [--budget 120] [--max-params 1e9] [--only resnet18,vgg11]
        [--smaller vit_h_14=112] [--threads 1] [--resume]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

from prune_bench_common import RESULTS, alternating_latencies_ms, table, write_result

SIZES = (64, 128, 224, 299)
# --smaller NAME=SIZE,...: models run at a smaller input to fit the time budget (none by default).
# torchvision's ViT takes its image size as a constructor argument, so e.g. vit_h_14=112 builds it for
# 112 px (4x fewer tokens than 224; the same layers, a shorter position table).
SMALLER: dict[str, int] = {}


def build(name: str, size: int):
    """torchvision:NAME as the workbench builds it (random weights, 1000 classes), in eval mode;
    a ViT in SMALLER is built for its smaller image size."""
    if name.startswith("vit_") and SMALLER.get(name) == size:
        import torchvision
        return torchvision.models.get_model(name, weights=None, num_classes=1000, image_size=size).eval()
    from workbench.core.models import build_base
    return build_base(f"torchvision:{name}", (3, size, size), 1000)[0].eval()


def peak_rss_gb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # KiB on Linux


def _randomise_zero_weights(model) -> bool:
    """Some classifiers start with an all-zero head (torchvision's ViT): random values instead, so the
    outputs compared after replaying the pruning are not trivially zero."""
    import torch
    changed = False
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0.0, 0.02)
                changed = True
    return changed


def one(name: str, ratio: float, threads: int = 1) -> dict:
    """Run in a child process: prune one model; returns its row."""
    import torch
    torch.set_num_threads(threads)

    from workbench.core.metrics import count_params, flops_per_module
    from workbench.core.pruning import structured

    torch.manual_seed(0)
    row: dict = {"model": name}
    model = x = None
    for size in (SMALLER[name],) if name in SMALLER else SIZES:
        try:
            model = build(name, size)
            x = torch.randn(1, 3, size, size)
            with torch.no_grad():
                reference = model(x)
            row["input"] = size
            break
        except Exception:  # noqa: BLE001 - too small an input for this architecture: try the next size
            model = None
    if model is None:
        return {**row, "status": "error", "error": "no input size in 64..299 works"}
    if _randomise_zero_weights(model):
        with torch.no_grad():
            reference = model(x)
    row["params0"], row["macs0"] = count_params(model)[0], flops_per_module(model, x)[0] // 2
    original = copy.deepcopy(model)
    phase = "prune"
    try:
        t0 = time.perf_counter()
        transform = structured.prune_once(model, x, ratio, "l1")
        row["prune_s"] = time.perf_counter() - t0
        phase = "forward after pruning"
        with torch.no_grad():
            out = model(x)
        if out.shape != reference.shape:
            raise RuntimeError(f"output shape {list(out.shape)} != {list(reference.shape)}")
        row["params1"], row["macs1"] = count_params(model)[0], flops_per_module(model, x)[0] // 2
        row["ms0"], row["ms1"], row["cpu_ms0"], row["cpu_ms1"] = alternating_latencies_ms(original, model, x)
        row["timing"] = "interleaved"
        if row["params1"] == row["params0"]:
            raise RuntimeError("torch-pruning found no channels it could remove")
        phase = "replay (snapshot reload)"
        del original
        t0 = time.perf_counter()
        fresh = build(name, row["input"])
        structured.replay(fresh, transform)
        fresh.load_state_dict(model.state_dict())
        row["replay_s"] = time.perf_counter() - t0
        with torch.no_grad():
            row["replay_max_diff"] = float((fresh(x) - out).abs().max())
            row["out_max_abs"] = float(out.abs().max())
        row["rss_gb"] = peak_rss_gb()
    except Exception as exc:  # noqa: BLE001 - the row reports it
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return {**row, "status": "error", "error": f"{phase}: {type(exc).__name__}: {first}",
                "trace": traceback.format_exc()[-600:]}
    row["param_ratio"] = row["params0"] / row["params1"]
    row["mac_ratio"] = row["macs0"] / max(1, row["macs1"])
    row["speedup"] = row["ms0"] / row["ms1"]
    row["cpu_speedup"] = row["cpu_ms0"] / row["cpu_ms1"]
    row["status"] = "ok" if row["replay_max_diff"] <= 1e-5 * max(1.0, row["out_max_abs"]) else "replay differs"
    return row


def num_params(name: str) -> int | None:
    import torchvision
    try:
        weights = torchvision.models.get_model_weights(name)
        return int(next(iter(weights)).meta["num_params"])
    except Exception:  # noqa: BLE001 - no published weights: size unknown up front
        return None


COLUMNS = [("model", "model", ""), ("status", "result", ""), ("input", "input", "d"),
           ("param_ratio", "params ratio", ".2f"), ("mac_ratio", "MACs ratio", ".2f"),
           ("ms0", "ms before", ".1f"), ("ms1", "ms after", ".1f"), ("speedup", "speed-up", ".2f"),
           ("cpu_speedup", "CPU-time speed-up", ".2f"), ("replay_max_diff", "replay max diff", ".1e"),
           ("prune_s", "prune (s)", ".1f"), ("seconds", "time (s)", ".0f"), ("load1", "load", ".1f"),
           ("error", "error / reason", "")]


def summary(rows: list[dict]) -> dict:
    """Counts over the rows: pruned (fewer params, same output shape), replayed exactly, faster."""
    pruned = [r for r in rows if r.get("params1") is not None and r["params1"] < r["params0"]
              and r["status"] in ("ok", "replay differs")]
    ok = [r for r in rows if r["status"] == "ok"]
    faster = [r for r in ok if r["speedup"] > 1.0]
    med = (lambda v: statistics.median(v) if v else None)
    return {"models": len(rows), "pruned": len(pruned), "replayed_exactly": len(ok), "faster": len(faster),
            "ok_and_faster": len(faster),
            "median_param_ratio": med([r["param_ratio"] for r in ok]),
            "median_mac_ratio": med([r["mac_ratio"] for r in ok]),
            "median_speedup": med([r["speedup"] for r in ok]),
            "median_cpu_speedup": med([r["cpu_speedup"] for r in ok]),
            "min_speedup": min((r["speedup"] for r in ok), default=None),
            "median_seconds": med([r["seconds"] for r in rows if "seconds" in r]),
            "max_seconds": max((r["seconds"] for r in rows if "seconds" in r), default=None),
            "total_minutes": sum(r.get("seconds", 0.0) for r in rows) / 60,
            "max_replay_diff": max((r["replay_max_diff"] for r in ok), default=None),
            "median_load1": med([r["load1"] for r in rows if "load1" in r])}


def summary_line(s: dict) -> str:
    def f(v, spec):
        return "n/a" if v is None else format(v, spec)
    return (f"{s['pruned']} of {s['models']} pruned, {s['replayed_exactly']} replayed exactly, "
            f"{s['faster']} faster; median params ratio {f(s['median_param_ratio'], '.2f')}, "
            f"MACs ratio {f(s['median_mac_ratio'], '.2f')}, speed-up {f(s['median_speedup'], '.2f')}x "
            f"(CPU time {f(s['median_cpu_speedup'], '.2f')}x, slowest {f(s['min_speedup'], '.2f')}x); "
            f"median {f(s['median_seconds'], '.0f')} s per model (max {f(s['max_seconds'], '.0f')} s), "
            f"{f(s['total_minutes'], '.0f')} min in all")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per model")
    ap.add_argument("--max-params", type=float, default=1e9)
    ap.add_argument("--only", default="")
    ap.add_argument("--smaller", default="", help="NAME=SIZE,...: run these models at this input size")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: on a shared 2-core machine two threads spin-wait on each "
                         "other under outside load and latency becomes erratic)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in the results file")
    ap.add_argument("--retime", action="store_true", help="with --resume: redo timeouts and ok rows timed the old way")
    args = ap.parse_args()
    SMALLER.update({k: int(v) for k, v in (item.split("=") for item in args.smaller.split(",") if item)})
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.ratio, args.threads)))
        return 0
    import torch
    torch.set_num_threads(args.threads)    # recorded as torch_threads in the results' machine entry
    import torchvision
    sizes = {n: num_params(n) for n in torchvision.models.list_models(module=torchvision.models)}
    names = sorted(sizes, key=lambda n: (sizes[n] is None, sizes[n] or 0, n))   # smallest first
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    out = "prune_all_torchvision" if not args.only else "prune_all_torchvision_subset"
    done = {}
    if args.resume and (RESULTS / f"{out}.json").exists():
        done = {r["model"]: r for r in json.loads((RESULTS / f"{out}.json").read_text())["rows"]
                if not (args.retime and (r["status"] == "timeout" or
                                         r["status"] == "ok" and r.get("timing") != "interleaved"))}
    rows = []

    def save() -> None:
        ok = [r for r in rows if r["status"] == "ok"]
        write_result(out, {"ratio": args.ratio, "budget_s": args.budget, "ok": len(ok), "total": len(rows),
                           "complete": len(rows) == len(names), "summary": summary(rows), "rows": rows})

    for name in names:
        if name in done:
            rows.append(done[name])
            continue
        n = sizes[name]
        if n is not None and n > args.max_params:
            rows.append({"model": name, "status": "skipped", "seconds": 0.0,
                         "error": f"{n / 1e6:.0f}M parameters: too big for this machine in the time budget"})
            print(f"{name}: skipped ({n / 1e6:.0f}M params)", flush=True)
            save()
            continue
        t0 = time.perf_counter()
        load = os.getloadavg()[0]
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", name, "--ratio", str(args.ratio),
                                   "--threads", str(args.threads), "--smaller", args.smaller],
                                  capture_output=True, text=True, timeout=args.budget)
            lines = [lat for lat in proc.stdout.splitlines() if lat.startswith("RESULT ")]
            row = json.loads(lines[-1][7:]) if lines else {
                "model": name, "status": "error",
                "error": f"child exited {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1][:160]}"}
        except subprocess.TimeoutExpired:
            row = {"model": name, "status": "timeout", "error": f"over the {args.budget:.0f} s budget"}
        row["seconds"] = time.perf_counter() - t0
        row["load1"] = load     # 1-minute load average when the model started (2 cores, shared)
        row.pop("trace", None) if row["status"] == "ok" else None
        rows.append(row)
        save()
        print(f"{name}: {row['status']} {row.get('error', '')} ({row['seconds']:.0f} s)", flush=True)
    print(table(rows, COLUMNS))
    print(summary_line(summary(rows)))
    save()
    print(f"wrote {RESULTS / (out + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
