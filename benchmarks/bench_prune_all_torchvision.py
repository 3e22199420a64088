"""(c) Structured pruning attempted on every torchvision classification model.

For each name in `torchvision.models.list_models(module=torchvision.models)` (random weights,
1000 classes), a child process builds the model at the smallest input size it accepts (64, 128,
224 or 299 pixels), removes 50% of every layer's channels with torch-pruning (L1 norm, the final
classifier's outputs kept, the same code as the `prune` stage), checks the output shape, replays
the recorded pruning history on a freshly built model (as loading a snapshot does) and compares
outputs, and measures params, MACs and batch-1 CPU latency before and after (the two models timed
alternately, median of up to 15 passes each). Each model has a
time budget; models over --max-params parameters are skipped with the reason.

    python benchmarks/bench_prune_all_torchvision.py [--budget 180] [--max-params 250e6] [--only resnet18,vgg11]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
import traceback

from prune_bench_common import RESULTS, table, write_result

SIZES = (64, 128, 224, 299)


def _latencies_ms(a, b, x, budget: float = 6.0) -> tuple[float, float]:
    """Median batch-1 latency of two models, timed alternately so that outside load hits both alike."""
    import torch
    times: tuple[list, list] = ([], [])
    with torch.inference_mode():
        a(x), b(x)
        start = time.perf_counter()
        while len(times[0]) < 15 and (time.perf_counter() - start < budget or len(times[0]) < 3):
            for model, out in ((a, times[0]), (b, times[1])):
                t = time.perf_counter()
                model(x)
                out.append(time.perf_counter() - t)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def one(name: str, ratio: float) -> dict:
    """Run in a child process: prune one model; returns its row."""
    import torch
    from workbench.core.metrics import count_params, flops_per_module
    from workbench.core.models import load_model
    from workbench.core.pruning import structured

    torch.manual_seed(0)
    row: dict = {"model": name}
    model = x = None
    for size in SIZES:
        try:
            model = load_model(f"torchvision:{name}", (3, size, size), 1000).module.eval()
            x = torch.randn(1, 3, size, size)
            with torch.no_grad():
                reference = model(x)
            row["input"] = size
            break
        except Exception:  # noqa: BLE001 - too small an input for this architecture: try the next size
            model = None
    if model is None:
        return {**row, "status": "error", "error": "no input size in 64..299 works"}
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
        row["ms0"], row["ms1"] = _latencies_ms(original, model, x)
        row["timing"] = "interleaved"
        if row["params1"] == row["params0"]:
            raise RuntimeError("torch-pruning found no channels it could remove")
        phase = "replay (snapshot reload)"
        fresh = load_model(f"torchvision:{name}", (3, row["input"], row["input"]), 1000).module.eval()
        structured.replay(fresh, transform)
        fresh.load_state_dict(model.state_dict())
        with torch.no_grad():
            row["replay_max_diff"] = float((fresh(x) - out).abs().max())
    except Exception as exc:  # noqa: BLE001 - the row reports it
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return {**row, "status": "error", "error": f"{phase}: {type(exc).__name__}: {first}",
                "trace": traceback.format_exc()[-600:]}
    row["param_ratio"] = row["params0"] / row["params1"]
    row["mac_ratio"] = row["macs0"] / max(1, row["macs1"])
    row["speedup"] = row["ms0"] / row["ms1"]
    row["status"] = "ok" if row["replay_max_diff"] < 1e-3 else "replay differs"
    return row


def num_params(name: str) -> int | None:
    import torchvision
    try:
        weights = torchvision.models.get_model_weights(name)
        return int(next(iter(weights)).meta["num_params"])
    except Exception:  # noqa: BLE001 - no published weights: size unknown up front
        return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--budget", type=float, default=180.0, help="seconds per model")
    ap.add_argument("--max-params", type=float, default=250e6)
    ap.add_argument("--only", default="")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in the results file")
    ap.add_argument("--retime", action="store_true", help="with --resume: redo timeouts and ok rows timed the old way")
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.ratio)))
        return 0
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
                           "complete": len(rows) == len(names), "rows": rows})

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
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", name, "--ratio", str(args.ratio)],
                                  capture_output=True, text=True, timeout=args.budget)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            row = json.loads(lines[-1][7:]) if lines else {
                "model": name, "status": "error",
                "error": f"child exited {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1][:160]}"}
        except subprocess.TimeoutExpired:
            row = {"model": name, "status": "timeout", "error": f"over the {args.budget:.0f} s budget"}
        row["seconds"] = time.perf_counter() - t0
        row.pop("trace", None) if row["status"] == "ok" else None
        rows.append(row)
        save()
        print(f"{name}: {row['status']} {row.get('error', '')} ({row['seconds']:.0f} s)", flush=True)
    ok = [r for r in rows if r["status"] == "ok"]
    print(table(rows, [("model", "model", ""), ("status", "result", ""), ("input", "input", "d"),
                       ("param_ratio", "params ratio", ".2f"), ("mac_ratio", "MACs ratio", ".2f"),
                       ("speedup", "speed-up", ".2f"), ("seconds", "time (s)", ".0f"), ("error", "error", "")]))
    print(f"{len(ok)}/{len(rows)} models pruned and reloaded")
    save()
    print(f"wrote {RESULTS / (out + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
