"""Popular timm image classifiers through the workbench: structured pruning + replay, int8, ONNX, speed.

For each model (`timm:NAME`, random weights, 1000 classes, built as `workbench.core.models.load_builtin`
builds it), a child process (one torch thread by default) finds the smallest input the model takes (64, 96,
128 px, else its configured size, e.g. 224 for ViT/DeiT/Swin/LeViT) and runs four checks, each reported in
its own column (a failure in one does not stop the others):

1. **prune**: remove 50% of every layer's channels with the code of the `prune` stage
   (`structured.prune_once`: torch-pruning, L1 norm, the classifier's outputs kept); the output must still be
   [1, 1000]; the recorded transform is replayed on a freshly built `timm:NAME` (`models.rebuild(record)` with
   the transform appended, as reloading a snapshot does), the pruned state dict loaded (strictly) and the
   outputs compared: max |diff| <= 1e-4 x max(1, max |out|). Params and MACs before and after.
2. **int8_static**: `quantization.int8` (torch.ao FX, x86) of the unpruned model, calibrated on 2 random
   batches of 4, must run and give [N, 1000]; top-1 agreement with float on 16 random inputs (informative only:
   random weights, random inputs).
3. **onnx**: `export_model(ExportSource.from_loaded(loaded), "onnx", path)` must come back verified (read back
   in onnxruntime, outputs within the format's tolerance); the pruned model is exported too (extra column).
4. **speed-up**: batch-1 CPU latency of the original and the pruned model, timed alternately for 5 s
   (median of 3-200 passes each, wall and process CPU time); the ratio.

Parameters that random initialisation leaves at zero or near it (zero-initialised last-BN gammas and heads,
layer scales of 1e-6, ViT's class token) are randomised first, so that every branch contributes to the outputs
compared after the replay.

`--no-timm-pruners` takes `workbench/core/pruning/timm_pruners` out of the prune stage's code path for the run
(`tv_pruners.adapt` without `timm_pruners.extend`): what torch-pruning does with timm models on its own.

    python benchmarks/bench_timm_zoo.py [--budget 300] [--only resnet18,vit_tiny_patch16_224] [--threads 1]
        [--no-timm-pruners] [--resume] [--out timm_zoo]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

from prune_bench_common import RESULTS, alternating_latencies_ms, table, write_result

# ResNet/ResNeXt, EfficientNet, MobileNet, RegNet, ConvNeXt, ViT, DeiT, Swin, EfficientFormer, FastViT and others.
MODELS = [
    "resnet18", "resnet50", "resnext50_32x4d", "seresnext26d_32x4d", "cspresnet50", "dla34", "dpn68", "densenet121",
    "hrnet_w18_small", "repvgg_a0", "inception_v3", "xception41",
    "efficientnet_b0", "efficientnet_lite0", "tf_efficientnetv2_b0", "tinynet_a", "mixnet_s", "rexnet_100",
    "ghostnet_100", "mobilenetv3_large_100", "mobilenetv3_small_100", "mobilenetv4_conv_small",
    "regnetx_002", "regnety_004",
    "convnext_atto", "convnext_tiny", "convnextv2_atto", "edgenext_xx_small", "poolformer_s12",
    "vit_tiny_patch16_224", "vit_small_patch16_224", "deit_tiny_patch16_224", "deit_small_patch16_224",
    "swin_tiny_patch4_window7_224", "levit_128s", "coat_lite_tiny", "mobilevit_xs",
    "efficientformer_l1", "efficientformerv2_s0", "fastvit_t8",
]
SIZES = (64, 96, 128)           # tried in order; then the model's configured size
CLASSES = 1000
REPLAY_TOL = 1e-4               # x max(1, max |out|)
PHASES = ("build", "onnx", "int8_static", "prune", "replay")


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"


def _emit(row: dict) -> None:
    """The row so far: the parent keeps the last one, so a timeout still reports the columns done."""
    print("RESULT " + json.dumps(row, default=str), flush=True)


def randomise_inert_weights(model) -> list[str]:
    """Parameters that random initialisation leaves all zero (timm's zero-init heads and last-BN gammas) or
    tiny (layer scale 1e-6, 1e-5) get random values of a normal size, so that every branch contributes to the
    output; returns their names."""
    import torch
    changed = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.is_floating_point() or p.numel() == 0:
                continue
            biggest = float(p.abs().max())
            if biggest == 0.0 and name.endswith("bias") and p.dim() == 1:
                continue                             # zero biases are normal
            if biggest < 1e-4:
                if p.dim() == 1:
                    p.uniform_(0.5, 1.0)             # a gamma / layer scale
                else:
                    p.normal_(0.0, 0.02)             # a head
                changed.append(name)
    return changed


def pick_size(model, configured: int) -> int:
    """The smallest of SIZES at which the model gives [1, CLASSES] (on the meta device where it can), else its
    configured size."""
    import torch
    for size in (*(s for s in SIZES if s < configured), configured):
        try:
            with torch.no_grad():
                out = model(torch.randn(1, 3, size, size))
            if tuple(out.shape) == (1, CLASSES):
                return size
        except Exception:  # noqa: BLE001 - too small for this architecture: the next size
            continue
    raise RuntimeError(f"no input size in {SIZES} or {configured} gives [1, {CLASSES}]")


def remove_timm_pruners() -> None:
    """Take `timm_pruners.extend` out of `tv_pruners.adapt` (this process only): torch-pruning on its own."""
    from workbench.core.pruning import timm_pruners
    timm_pruners.extend = lambda model, adaptation: adaptation


def one(name: str, ratio: float, threads: int, timm_pruners: bool) -> dict:
    """Run in a child process: the four checks on one model; prints its row after each."""
    import torch
    torch.set_num_threads(threads)
    if not timm_pruners:
        remove_timm_pruners()

    from workbench.core import models
    from workbench.core.export import ExportSource, export_model
    from workbench.core.metrics import count_params, flops_per_module
    from workbench.core.pruning import structured
    from workbench.core.quantization import int8

    row: dict = {"model": name, "phase": "build"}
    _emit(row)
    spec = f"timm:{name}"
    loaded = models.load_builtin(spec, None, CLASSES, seed=0)
    model = loaded.module.eval()
    row["randomised"] = len(randomise_inert_weights(model))
    configured = int(loaded.input_shape[-1])
    size = pick_size(model, configured)
    shape = (3, size, size)
    loaded = dataclasses.replace(loaded, input_shape=shape, record={**loaded.record, "input_shape": list(shape)})
    row.update(input=size, configured=configured)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, *shape, generator=gen)
    with torch.no_grad():
        reference = model(x)
    row["params0"], row["macs0"] = count_params(model)[0], flops_per_module(model, x)[0] // 2

    with tempfile.TemporaryDirectory() as tmp:
        # 3. ONNX export of the unpruned model
        row["phase"] = "onnx"
        _emit(row)
        t0 = time.perf_counter()
        try:
            res = export_model(ExportSource.from_loaded(loaded), "onnx", os.path.join(tmp, "model.onnx"))
            row["onnx"] = "ok" if res.verified else "error"
            row["onnx_diff"] = res.max_abs_diff
            if not res.verified:
                row["onnx_error"] = (res.error or "not verified").splitlines()[0][:200]
        except Exception as exc:  # noqa: BLE001 - the row reports it
            row["onnx"], row["onnx_error"] = "error", _first_line(exc)
        row["onnx_s"] = time.perf_counter() - t0

        # 2. int8_static of the unpruned model
        row["phase"] = "int8_static"
        _emit(row)
        t0 = time.perf_counter()
        try:
            prepared = int8.prepare_static(model, x)
            calib = [(torch.randn(4, *shape, generator=gen), None) for _ in range(2)]
            list(int8.calibrate(prepared, calib, len(calib)))
            qmodel = int8.convert(prepared)
            int8.check_runs(qmodel, x)
            batch = torch.randn(16, *shape, generator=gen)
            with torch.inference_mode(), int8.ao_quiet():
                qout, fout = qmodel(batch), model(batch)
            if tuple(qout.shape) != (16, CLASSES):
                raise RuntimeError(f"int8 output shape {list(qout.shape)} != [16, {CLASSES}]")
            row["int8"] = "ok"
            row["int8_top1"] = float((qout.argmax(1) == fout.argmax(1)).float().mean())
            row["int8_float_ops"] = len(int8.float_islands(qmodel))
            del prepared, qmodel
        except Exception as exc:  # noqa: BLE001 - the row reports it
            row["int8"], row["int8_error"] = "error", _first_line(exc)
        row["int8_s"] = time.perf_counter() - t0

        # 1. structured pruning (+ 4. speed-up), then replay on a freshly built model
        row["phase"] = "prune"
        _emit(row)
        pruned = copy.deepcopy(model)
        try:
            t0 = time.perf_counter()
            transform = structured.prune_once(pruned, x, ratio, "l1")
            row["prune_s"] = time.perf_counter() - t0
            with torch.no_grad():
                out = pruned(x)
            if out.shape != reference.shape:
                raise RuntimeError(f"output shape {list(out.shape)} != {list(reference.shape)}")
            row["params1"], row["macs1"] = count_params(pruned)[0], flops_per_module(pruned, x)[0] // 2
            if row["params1"] == row["params0"]:
                raise RuntimeError("torch-pruning found no channels it could remove")
            row["param_ratio"] = row["params0"] / row["params1"]
            row["mac_ratio"] = row["macs0"] / max(1, row["macs1"])
            row["ms0"], row["ms1"], row["cpu_ms0"], row["cpu_ms1"] = alternating_latencies_ms(model, pruned, x)
            row["speedup"], row["cpu_speedup"] = row["ms0"] / row["ms1"], row["cpu_ms0"] / row["cpu_ms1"]
            row["phase"] = "replay"
            _emit(row)
            t0 = time.perf_counter()
            record = {**loaded.record, "transforms": [transform]}
            fresh = models.rebuild(record, spec).eval()
            models.load_state_into(fresh, pruned.state_dict(), spec)
            row["replay_s"] = time.perf_counter() - t0
            with torch.no_grad():
                row["replay_max_diff"] = float((fresh(x) - out).abs().max())
            row["out_max_abs"] = float(out.abs().max())
            ok = math.isfinite(row["replay_max_diff"]) and \
                row["replay_max_diff"] <= REPLAY_TOL * max(1.0, row["out_max_abs"])
            row["prune"] = "ok" if ok else "error"
            if not ok:
                row["prune_error"] = f"replay differs by {row['replay_max_diff']:.2e}"
            # the pruned model exported too (not one of the four checks)
            try:
                res = export_model(ExportSource(pruned.eval(), record, {}, torch.randn(8, *shape, generator=gen)),
                                   "onnx", os.path.join(tmp, "pruned.onnx"))
                row["onnx_pruned"] = "ok" if res.verified else f"error: {(res.error or '').splitlines()[0][:120]}"
            except Exception as exc:  # noqa: BLE001 - the row reports it
                row["onnx_pruned"] = f"error: {_first_line(exc)}"
        except Exception as exc:  # noqa: BLE001 - the row reports it
            row["prune"], row["prune_error"] = "error", f"{row['phase']}: {_first_line(exc)}"
            row["trace"] = traceback.format_exc()[-800:]
    row["phase"] = "done"
    import resource
    row["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return row


COLUMNS = [("model", "model", ""), ("input", "input", "d"), ("params0", "params", ",d"),
           ("prune", "prune+replay", ""), ("param_ratio", "params ratio", ".2f"), ("mac_ratio", "MACs ratio", ".2f"),
           ("replay_max_diff", "replay max diff", ".1e"), ("int8", "int8_static", ""),
           ("int8_top1", "int8 top-1 agree", ".2f"), ("onnx", "onnx", ""), ("onnx_pruned", "onnx (pruned)", ""),
           ("ms0", "ms before", ".1f"), ("ms1", "ms after", ".1f"), ("speedup", "speed-up", ".2f"),
           ("cpu_speedup", "CPU-time speed-up", ".2f"), ("seconds", "time (s)", ".0f"), ("load1", "load", ".1f"),
           ("errors", "errors / reasons", "")]


def summary(rows: list[dict]) -> dict:
    med = (lambda v: statistics.median(v) if v else None)
    pruned = [r for r in rows if r.get("prune") == "ok"]
    timed = [r for r in rows if r.get("speedup") is not None]
    return {"models": len(rows),
            "prune_replay_ok": len(pruned),
            "int8_static_ok": sum(r.get("int8") == "ok" for r in rows),
            "onnx_ok": sum(r.get("onnx") == "ok" for r in rows),
            "onnx_pruned_ok": sum(r.get("onnx_pruned") == "ok" for r in rows),
            "speed_measured": len(timed),
            "faster": sum(r["speedup"] > 1.0 for r in timed),
            "all_four_ok": sum(r.get("prune") == "ok" and r.get("int8") == "ok" and r.get("onnx") == "ok"
                               for r in rows),
            "median_speedup": med([r["speedup"] for r in pruned]),
            "median_cpu_speedup": med([r["cpu_speedup"] for r in pruned]),
            "min_speedup": min((r["speedup"] for r in pruned), default=None),
            "max_speedup": max((r["speedup"] for r in pruned), default=None),
            "median_param_ratio": med([r["param_ratio"] for r in pruned]),
            "median_mac_ratio": med([r["mac_ratio"] for r in pruned]),
            "median_int8_top1": med([r["int8_top1"] for r in rows if r.get("int8") == "ok"]),
            "max_replay_rel_diff": max((r["replay_max_diff"] / max(1.0, r["out_max_abs"]) for r in pruned), default=None),
            "median_seconds": med([r["seconds"] for r in rows if "seconds" in r]),
            "total_minutes": sum(r.get("seconds", 0.0) for r in rows) / 60,
            "median_load1": med([r["load1"] for r in rows if "load1" in r]),
            "max_load1": max((r["load1"] for r in rows if "load1" in r), default=None)}


def summary_lines(s: dict) -> list[str]:
    def f(v, spec):
        return "n/a" if v is None else format(v, spec)
    n = s["models"]
    return [f"structured 50% prune + exact replay: {s['prune_replay_ok']} of {n} (median params ratio "
            f"{f(s['median_param_ratio'], '.2f')}, MACs ratio {f(s['median_mac_ratio'], '.2f')}, largest replay diff "
            f"{f(s['max_replay_rel_diff'], '.1e')} x max(1, max|out|))",
            f"int8_static: {s['int8_static_ok']} of {n} (median top-1 agreement with float "
            f"{f(s['median_int8_top1'], '.2f')}, random weights and inputs)",
            f"onnx verified: {s['onnx_ok']} of {n} (pruned models: {s['onnx_pruned_ok']})",
            f"speed-up measured: {s['speed_measured']} of {n}, {s['faster']} faster; median speed-up of the pruned "
            f"models {f(s['median_speedup'], '.2f')}x (CPU time {f(s['median_cpu_speedup'], '.2f')}x, range "
            f"{f(s['min_speedup'], '.2f')}-{f(s['max_speedup'], '.2f')}x)",
            f"all of prune, int8_static and onnx: {s['all_four_ok']} of {n}; median {f(s['median_seconds'], '.0f')} s "
            f"per model, {f(s['total_minutes'], '.0f')} min in all; 1-min load average median "
            f"{f(s['median_load1'], '.1f')} (max {f(s['max_load1'], '.1f')}) on 2 cores"]


def errors_cell(row: dict) -> str:
    parts = [row[k + "_error"] if row[k + "_error"].startswith(f"{k}") else f"{k}: {row[k + '_error']}"
             for k in ("prune", "int8", "onnx") if row.get(k + "_error")]
    if row.get("error"):
        parts.insert(0, row["error"])
    return "; ".join(parts).replace("|", "/")


def run_child(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--one", name, "--ratio", str(args.ratio), "--threads", str(args.threads)]
    if not args.timm_pruners:
        cmd.append("--no-timm-pruners")
    timed_out, stdout, stderr, rc = False, "", "", None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.budget)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        timed_out = True
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    row = json.loads(lines[-1][7:]) if lines else {"model": name, "phase": "start"}
    if row.get("phase") != "done":
        phase = row.get("phase", "start")
        why = f"over the {args.budget:.0f} s budget" if timed_out else \
            f"child exited {rc}: {(stderr.strip().splitlines() or [''])[-1][:160]}"
        col = {"onnx": "onnx", "int8_static": "int8", "prune": "prune", "replay": "prune"}.get(phase)
        if col:
            row[col], row[col + "_error"] = ("timeout" if timed_out else "error"), f"{phase}: {why}"
        else:
            row["error"] = f"{phase}: {why}"
        for later in ("int8", "prune") if phase == "onnx" else ("prune",) if phase == "int8_static" else ():
            row.setdefault(later, "not run")
    row["status"] = "timeout" if timed_out else "done" if row.get("phase") == "done" else "error"
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds per model (all four checks)")
    ap.add_argument("--only", default="", help="comma-separated timm names (default: the list in this file)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: on a shared 2-core machine, as the torchvision benchmark)")
    ap.add_argument("--timm-pruners", action=argparse.BooleanOptionalAction, default=True,
                    help="--no-timm-pruners: without workbench/core/pruning/timm_pruners (torch-pruning alone)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in the results file")
    ap.add_argument("--out", default="", help="results name (default timm_zoo, or timm_zoo_subset with --only)")
    args = ap.parse_args()
    if args.one:
        try:
            row = one(args.one, args.ratio, args.threads, args.timm_pruners)
        except Exception as exc:  # noqa: BLE001 - building the model or finding its input size failed
            row = {"model": args.one, "phase": "done", "error": f"build: {_first_line(exc)}",
                   "prune": "not run", "int8": "not run", "onnx": "not run", "trace": traceback.format_exc()[-800:]}
        _emit(row)
        return 0
    import torch
    torch.set_num_threads(args.threads)
    import timm
    known = set(timm.list_models())
    names = [n for n in (args.only.split(",") if args.only else MODELS) if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"not in timm.list_models(): {', '.join(unknown)}")
    out = args.out or ("timm_zoo_subset" if args.only else "timm_zoo")
    path = RESULTS / f"{out}.json"
    done = {r["model"]: r for r in json.loads(path.read_text())["rows"]} if args.resume and path.exists() else {}
    rows: list[dict] = []
    loads: list[tuple[float, float, float]] = []

    def save() -> None:
        import torch_pruning as tp
        write_result(out, {"ratio": args.ratio, "budget_s": args.budget, "threads": args.threads,
                           "timm": timm.__version__, "torch_pruning": tp.__version__,
                           "timm_pruners_installed": args.timm_pruners, "complete": len(rows) == len(names),
                           "loadavg_during_run": loads, "summary": summary(rows), "rows": rows})

    for name in names:
        if name in done:
            rows.append(done[name])
            continue
        t0 = time.perf_counter()
        load = os.getloadavg()
        row = run_child(name, args)
        row["seconds"] = time.perf_counter() - t0
        row["load1"] = load[0]     # 1-minute load average when the model started (2 cores, shared)
        loads.append(tuple(round(v, 2) for v in os.getloadavg()))
        row["errors"] = errors_cell(row)
        if row.get("prune") == "ok":
            row.pop("trace", None)
        rows.append(row)
        save()
        print(f"{name}: prune {row.get('prune')} int8 {row.get('int8')} onnx {row.get('onnx')} "
              f"speed-up {row.get('speedup', float('nan')):.2f} {row['errors']} ({row['seconds']:.0f} s)", flush=True)
    print(table(rows, COLUMNS))
    for line in summary_lines(summary(rows)):
        print(line)
    save()
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
