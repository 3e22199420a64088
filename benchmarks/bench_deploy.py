"""Deploy benchmark (issue 19 item 5): original vs pruned vs int8 vs pruned+int8 on each CPU runtime installed.

Models (random weights, built without any download): torchvision resnet18 and mobilenet_v2, timm efficientnet_b0
and vit_small_patch16_224. Batch-norm statistics are recalibrated on a few random batches first (a random-init
mobilenet_v2 otherwise gives near-constant outputs, std ~1e-9, and every comparison on it means nothing).

Variants of each model:
- `original`: fp32;
- `pruned 50%`: `structured.prune_once(model, x, 0.5, "l1")`, the workbench's structured pruning (physically smaller);
- `int8` / `pruned+int8`: the workbench's int8 for the runtime: torch.ao static (`quantization.int8`, x86 backend)
  for eager; the `onnx_int8` export (onnxruntime static QDQ, per-channel) for onnxruntime and OpenVINO; both
  calibrated on the same 4 random batches of 8. torch.compile is not given torch.ao int8 (its quantized ops have
  no meta kernels: dynamo falls back to eager around each one), so those cells are left out with the reason.

Runtimes: eager, compile (torch.compile, inductor), onnxruntime (CPU EP), openvino where importable; the
workbench's runtime registry (`workbench.core.runtimes`) decides which are installed when it exists.
Timing: batch 1, 224 px, `LATENCY_THREADS` (one) threads in torch, onnxruntime and OpenVINO alike; every cell of
a model is timed ALTERNATELY in one process with the reference, eager fp32 of the original
(`latency.alternating_ms`), and the speed-up is the median of the per-round ratios with p10-p90.
Agreement: top-1 agreement and relative output error ||y - y_float|| / ||y_float|| of every cell against its float
model in eager (the original for `original`/`int8`, the pruned model for the pruned ones) on 64 fixed random
inputs (seed 1); the pruned model's batch norms are recalibrated too (a pruned random-weight CNN otherwise gives one
class for every input). `classes`: how many distinct top-1 classes the float model gives on those 64 inputs (an
agreement over few classes says little). Random weights, so no accuracy.

    python benchmarks/bench_deploy.py [--models resnet18 ...] [--repeats 30] [--runtimes eager onnxruntime ...]
    python benchmarks/bench_deploy.py --quick          # resnet18 only, 10 repeats: a few minutes on 2 cores

Written: benchmarks/results/deploy.json (--quick: deploy_quick.json; --out NAME: NAME.json).
"""
from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from alternating import ratios
from prune_bench_common import table, write_result
from torch import nn

from workbench.core.latency import LATENCY_THREADS, alternating_ms, summary, timing_threads

MODELS = {"resnet18": "torchvision", "mobilenet_v2": "torchvision", "efficientnet_b0": "timm",
          "vit_small_patch16_224": "timm"}
RUNTIMES = ("eager", "compile", "onnxruntime", "openvino")
VARIANTS = (("original", False, False), ("pruned 50%", True, False), ("int8", False, True),
            ("pruned+int8", True, True))
BAR = 12.0                  # issue 19: pruned 50 % + int8, best CPU runtime, vs eager fp32 of the original resnet18


class Skip(Exception):
    """A cell that cannot be built on this runtime (the message says why)."""


class Fn(nn.Module):
    """A callable tensor -> tensor (an onnxruntime or OpenVINO session) seen as a module, for `alternating_ms`."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def bn_batches() -> list[torch.Tensor]:
    """The random batches batch-norm statistics are recalibrated on (seed 3), before and after pruning."""
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(16, 3, 224, 224, generator=gen) for _ in range(4)]


def build(name: str, bn: list[torch.Tensor]) -> nn.Module:
    """A model of the benchmark, random weights (seed 0), batch norms recalibrated on `bn`."""
    torch.manual_seed(0)
    if MODELS[name] == "timm":
        import timm
        model: nn.Module = timm.create_model(name, pretrained=False)
    else:
        import torchvision
        model = getattr(torchvision.models, name)(weights=None)
    recalibrate_bn(model, bn)
    return model.eval()


def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Batch-norm running statistics set to the plain average over `batches` (no-op without batch norms)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                     # cumulative average
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    model.eval()


# ---- runtimes: the core registry where it exists, else thin adapters over the workbench's export code ----------

def registry() -> Any:
    """`workbench.core.runtimes` (the runtime registry), or None in a tree without it."""
    try:
        from workbench.core import runtimes
    except ImportError:
        return None
    return runtimes


def installed(wanted: Iterable[str]) -> dict[str, str | None]:
    """{runtime: None if usable here, else why not} (the registry's `missing()` where it exists)."""
    reg = registry()
    if reg is not None:
        return {rt: reg.get(rt).missing() for rt in wanted}
    import importlib.util
    needs = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
    return {rt: f"{needs[rt]} is not installed here" if rt in needs and importlib.util.find_spec(needs[rt]) is None
            else None for rt in wanted}


def _onnx_int8_file(model: nn.Module, example: torch.Tensor, calib: list[torch.Tensor], tmp: Path) -> Path:
    """The float model through the workbench's `onnx_int8` export (onnxruntime static QDQ, per-channel)."""
    from workbench.core.export import ExportSource
    from workbench.core.export.onnx_int8 import write
    path = tmp / f"{id(model)}.int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(ExportSource(model, {}, {}, example, calib=calib), path)
    return path


def _ort(path: Path) -> Fn:
    """An onnxruntime session of the file, LATENCY_THREADS threads (the registry's session where it exists)."""
    import numpy as np
    reg = registry()
    if reg is not None:
        from workbench.core.runtimes.onnxruntime import session
        sess = session(str(path))
    else:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = options.inter_op_num_threads = LATENCY_THREADS
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return Fn(lambda x: torch.from_numpy(np.asarray(sess.run(None, {name: x.numpy()})[0])))


def _openvino(path: Path) -> Fn:
    import numpy as np
    import openvino as ov
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": LATENCY_THREADS,
                                                          "PERFORMANCE_HINT": "LATENCY"})
    return Fn(lambda x: torch.from_numpy(np.asarray(compiled(x.numpy())[0])))


def _float_fallback(runtime: str, model: nn.Module, example: torch.Tensor, tmp: Path) -> nn.Module:
    """A float model on `runtime` without the registry (eager, compile, onnxruntime, openvino)."""
    if runtime == "eager":
        return model
    if runtime == "compile":
        compiled = torch.compile(copy.deepcopy(model), dynamic=False)
        with timing_threads(), torch.inference_mode():      # compiled under the timing thread policy
            compiled(example)
        return compiled  # type: ignore[return-value]  # an OptimizedModule is an nn.Module
    from workbench.core.export.onnx import export_onnx
    path = tmp / f"{id(model)}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(model, example, path)
    return _ort(path) if runtime == "onnxruntime" else _openvino(path)


def _int8_eager(model: nn.Module, example: torch.Tensor, calib: list[torch.Tensor]) -> nn.Module:
    from workbench.core.quantization import int8
    prepared = int8.prepare_static(model, example)
    list(int8.calibrate(prepared, [(b, torch.empty(0)) for b in calib], len(calib)))
    qmodel = int8.convert(prepared)
    int8.check_runs(qmodel, example)
    return qmodel


def prepare(runtime: str, model: nn.Module, quantized: bool, example: torch.Tensor, calib: list[torch.Tensor],
            tmp: Path) -> nn.Module:
    """`model` (float) made ready to run on `runtime`, quantized to int8 the runtime's way when asked: float models
    through the registry's `prepare` and `verify` where it exists, int8 through the workbench's own int8 paths."""
    if quantized:
        if runtime == "eager":
            return _int8_eager(model, example, calib)
        if runtime == "compile":
            raise Skip("torch.ao int8 has no meta kernels, so torch.compile runs it eagerly op by op")
        path = _onnx_int8_file(model, example, calib, tmp)
        return _ort(path) if runtime == "onnxruntime" else _openvino(path)
    reg = registry()
    if reg is None:
        return _float_fallback(runtime, model, example, tmp)
    rt = reg.get(runtime)
    fn = rt.prepare(model, example)
    why = reg.verify(rt.name, fn, model, example, rt.tolerance)
    if why:
        raise Skip(why)
    return fn if isinstance(fn, nn.Module) else Fn(fn)


# ---- measurement -----------------------------------------------------------------------------------------------

def outputs(model: nn.Module, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Logits of `model` on each input (batch 1, so a compiled model is not recompiled for another shape)."""
    with timing_threads(), torch.inference_mode():
        return torch.cat([model(x).float() for x in inputs])


def agreement_fields(got: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    return {"top1_agreement": float((got.argmax(1) == ref.argmax(1)).float().mean()),
            "rel_error": float((got - ref).norm() / ref.norm().clamp_min(1e-12))}


def measure(original: nn.Module, runtimes: list[str], repeats: int, example: torch.Tensor,
            inputs: list[torch.Tensor], calib: list[torch.Tensor], bn: list[torch.Tensor],
            log: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every (variant, runtime) cell of one model: latency with spread, speed-up against eager fp32 of the original
    timed alternately with it, agreement with its float model. The pruned model's batch norms are recalibrated on
    `bn` (as after the original's: the pruned layers' inputs changed, and without it a pruned random-weight CNN
    gives one class for every input). Returns (rows, facts about the model)."""
    from workbench.core.metrics import flops_per_module
    from workbench.core.pruning import structured
    original = original.eval()
    pruned = copy.deepcopy(original)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structured.prune_once(pruned, example, 0.5, "l1")
    recalibrate_bn(pruned, bn)
    macs = [flops_per_module(m, example)[0] // 2 for m in (original, pruned)]
    params = [sum(p.numel() for p in m.parameters()) for m in (original, pruned)]
    skipped: dict[str, str] = {}
    facts: dict[str, Any] = {"gmacs": macs[0] / 1e9, "pruned_gmacs": macs[1] / 1e9,
                             "mac_ratio": macs[0] / max(1, macs[1]), "params_m": params[0] / 1e6,
                             "pruned_params_m": params[1] / 1e6, "skipped": skipped}
    refs = {False: outputs(original, inputs), True: outputs(pruned, inputs)}
    cells: list[tuple[str, str, nn.Module]] = []
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for runtime in runtimes:
            for variant, is_pruned, quantized in VARIANTS:
                t0 = time.perf_counter()
                float_model = pruned if is_pruned else original
                try:
                    ready = original if (runtime, variant) == ("eager", "original") else \
                        prepare(runtime, float_model, quantized, example, calib, Path(tmpdir))
                except Exception as why:  # noqa: BLE001 - a cell that cannot be built is reported, never fatal
                    skipped[f"{variant} / {runtime}"] = str(why) if isinstance(why, Skip) else \
                        f"{type(why).__name__}: {why}"[:300]
                    continue
                log(f"  {variant} on {runtime}: ready in {time.perf_counter() - t0:.1f} s")
                cells.append((variant, runtime, ready))
                rows.append({"variant": variant, "runtime": runtime, "int8": quantized, "pruned": is_pruned,
                             "float_classes": int(refs[is_pruned].argmax(1).unique().numel()),
                             **agreement_fields(outputs(ready, inputs), refs[is_pruned])})
        log(f"  timing {len(cells)} cells alternately, {repeats} rounds")
        times = alternating_ms([m for _, _, m in cells], example, repeats=repeats, max_seconds=3600.0)
    ref_times = times[0]                              # cells[0] is eager fp32 of the original
    for row, t in zip(rows, times):
        speed = ratios(ref_times, t)
        lat = summary(t, LATENCY_THREADS, int(example.shape[0]))
        row.update({"median_ms": lat["median_ms"], "p10_ms": lat["p10_ms"], "p90_ms": lat["p90_ms"],
                    "speedup": speed["median"], "speedup_p10": speed["low"], "speedup_p90": speed["high"],
                    "repeats": speed["n"], "noisy": bool(lat.get("noisy", False))})
    return rows, facts


def best_pruned_int8(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest pruned+int8 cell (the issue's bar compares it with eager fp32 of the original)."""
    candidates = [r for r in rows if r["variant"] == "pruned+int8"]
    return max(candidates, key=lambda r: r["speedup"]) if candidates else None


COLUMNS = [("model", "model", ""), ("variant", "variant", ""), ("runtime", "runtime", ""),
           ("median_ms", "ms", ".2f"), ("p10_ms", "p10", ".2f"), ("p90_ms", "p90", ".2f"),
           ("speedup", "speed-up vs eager fp32", ".2f"), ("speedup_p10", "p10", ".2f"), ("speedup_p90", "p90", ".2f"),
           ("repeats", "n", "d"), ("top1_agreement", "top-1 agree", ".3f"), ("rel_error", "rel. error", ".3f"),
           ("float_classes", "classes", "d")]


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    ap.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="resnet18 only, 10 repeats")
    ap.add_argument("--out", help="results file under benchmarks/results, no .json (deploy; --quick: deploy_quick)")
    args = ap.parse_args()
    if args.quick:
        args.models, args.repeats = ["resnet18"], min(args.repeats, 10)
    args.out = args.out or ("deploy_quick" if args.quick else "deploy")
    available = installed(args.runtimes)
    runtimes = [rt for rt, why in available.items() if why is None]
    if "eager" not in runtimes:
        runtimes.insert(0, "eager")                      # the reference
    load_before, started = _load(), time.perf_counter()
    print(f"load average at start (1/5/15 min): {load_before}; runtimes: {', '.join(runtimes)}"
          + "".join(f"; {rt} left out: {why}" for rt, why in available.items() if why))
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(1, 3, 224, 224, generator=gen) for _ in range(64)]
    calib_gen = torch.Generator().manual_seed(2)
    calib = [torch.randn(8, 3, 224, 224, generator=calib_gen) for _ in range(4)]
    example = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    bn = bn_batches()
    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    for name in args.models:
        print(f"{name}:")
        model_rows, facts = measure(build(name, bn), runtimes, args.repeats, example, inputs, calib, bn)
        best = best_pruned_int8(model_rows)
        facts["best_pruned_int8"] = {k: best[k] for k in ("runtime", "speedup", "speedup_p10", "speedup_p90")} \
            if best else None
        models[name] = facts
        rows += [{"model": name, **r} for r in model_rows]
    print()
    print(table(rows, COLUMNS))
    print()
    for name, facts in models.items():
        best = facts["best_pruned_int8"]
        line = (f"{name}: pruned 50% MAC ratio {facts['mac_ratio']:.2f} ({facts['params_m']:.2f} -> "
                f"{facts['pruned_params_m']:.2f} M params)")
        if best:
            line += (f"; best pruned+int8: {best['runtime']} {best['speedup']:.2f}x "
                     f"(p10-p90 {best['speedup_p10']:.2f}-{best['speedup_p90']:.2f})")
            if name == "resnet18":
                line += f" -- issue bar {BAR:g}x {'met' if best['speedup'] >= BAR else 'NOT met'}"
        print(line)
        for cell, why in facts["skipped"].items():
            print(f"  left out: {cell}: {why}")
    load_after = _load()
    print(f"load average at end (1/5/15 min): {load_after}; {time.perf_counter() - started:.0f} s")
    path = write_result(args.out, {"batch": 1, "image": 224, "threads": LATENCY_THREADS, "repeats": args.repeats,
                                   "agreement_inputs": "64 random N(0,1) inputs (seed 1), batch-norm statistics "
                                   "recalibrated on 4 random batches of 16 (seed 3), after pruning too; random "
                                   "weights, so no accuracy; float_classes: distinct top-1 classes of the float "
                                   "model on them",
                                   "calibration": "4 random batches of 8 (seed 2), same for torch.ao and onnx_int8",
                                   "runtimes": runtimes, "left_out": {k: v for k, v in available.items() if v},
                                   "load_start": load_before, "load_end": load_after, "models": models,
                                   "rows": rows})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
