"""(a) Deep Compression on `sample:digits_mlp` with resources/recipes/deep_compression.yaml.

Runs the shipped recipe (iterative magnitude pruning + fine-tuning, k-means 5 bits for Linear with
centroid fine-tuning, packed export), then writes real files for each step of the paper's table
(Han et al. 2016, table 1 style), each read back and checked to give identical outputs:
- pruning:      the pruned, fine-tuned model as sparse relative indices (fixed-width gaps) + values
- +clustering:  the clustered model with fixed-width cluster indices and gaps (no Huffman)
- +Huffman:     the packed file the recipe exported
Ratio = baseline fp32 parameter bytes / file bytes. Targets: >= 40x, accuracy within 0.5 points.

    python benchmarks/bench_deep_compression.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prune_bench_common import ROOT, table, write_result

from workbench.core.run_handle import RunOptions


def packed_file(snapshot: Path, out: Path, huffman: bool, gap_bits: int | None = None) -> int:
    """Write a snapshot as a packed file, read it back with a fresh loader, require identical outputs."""
    import torch

    from workbench.core.export import ExportSource, packed
    from workbench.core.specs import load_model
    loaded = load_model(str(snapshot))
    x = torch.randn(64, *loaded.input_shape, generator=torch.Generator().manual_seed(0))
    source = ExportSource(loaded.module.eval(), loaded.record, loaded.state, x)
    packed.write(source, out, huffman_coding=huffman, gap_bits=gap_bits)
    with torch.inference_mode():
        assert torch.equal(packed.load(out).module(x), source.model(x)), f"{out} does not round-trip"
    return out.stat().st_size


def main() -> int:
    from workbench.core.events import StageFailed
    from workbench.core.recipe import Recipe
    from workbench.core.runner import Run

    recipe_path = ROOT / "resources" / "recipes" / "deep_compression.yaml"
    recipe = Recipe.load(recipe_path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        run = Run(recipe, RunOptions(out_dir=out / "run"))
        for event in run.events():
            if isinstance(event, StageFailed):
                print("stage failed:", event.message)
                return 1
        seconds = time.perf_counter() - t0
        report = run.report.data
        snaps = {s["stage"]: s for s in report["snapshots"]}
        base, quant = snaps["baseline"], snaps["quantize"]
        pruned = [s for s in report["snapshots"] if s["stage"] not in ("baseline", "quantize")][-1]
        dense = base["dense_bytes"]
        export = next(e for e in report["exports"] if e["format"] == "packed")
        sizes = {
            "pruning": packed_file(out / "run" / pruned["path"], out / "pruned.packed", huffman=False),
            "+clustering": packed_file(out / "run" / quant["path"], out / "clustered.packed", huffman=False),
            "+Huffman": export["bytes"],
        }
        by_gap_bits = [{"gap_bits": b if b else "cheapest per tensor",
                        "bytes": packed_file(out / "run" / quant["path"], out / f"gap{b}.packed", True, b or None)}
                       for b in (4, 5, 6, 7, 8, 0)]
    rows = [{"step": "baseline (fp32, dense)", "bytes": dense, "ratio": 1.0, "accuracy": 100 * base["accuracy"],
             "nonzero": base["nonzero_params"]}]
    for step, acc_row in (("pruning", pruned), ("+clustering", quant), ("+Huffman", quant)):
        rows.append({"step": step, "bytes": sizes[step], "ratio": dense / sizes[step], "accuracy": 100 * acc_row["accuracy"],
                     "nonzero": acc_row["nonzero_params"]})
    print(f"Deep Compression, {recipe_path.relative_to(ROOT)} on {report['model']} ({seconds:.0f} s)\n")
    print(table(rows, [("step", "step", ""), ("nonzero", "non-zero weights", ","), ("bytes", "file bytes", ","),
                       ("ratio", "ratio", ".1f"), ("accuracy", "test accuracy %", ".2f")]))
    breakdown = export["breakdown"]
    layer_rows = [{"layer": name, **{k: v for k, v in row.items() if k != "entropy_bytes"},
                   "bound_idx": row["entropy_bytes"].get("indices"), "bound_gap": row["entropy_bytes"].get("gaps")}
                  for name, row in breakdown["layers"].items()]
    layer_rows.append({"layer": "header", "total": breakdown["header"]})
    layer_rows.append({"layer": "all", **breakdown["streams"], "total": breakdown["total"],
                       "bound_idx": breakdown["entropy_bound"]["indices"], "bound_gap": breakdown["entropy_bound"]["gaps"]})
    print("\nPacked file by layer and stream (bytes; bound = entropy of the stream, n * H / 8):\n")
    print(table(layer_rows, [("layer", "tensor", ""), ("layout", "layout", ""), ("gap_bits", "gap bits", ""),
                             ("nonzero", "non-zero", ","), ("codebook", "codebook", ","), ("indices", "indices", ","),
                             ("bound_idx", "indices bound", ".0f"), ("gaps", "gaps", ","), ("bound_gap", "gaps bound", ".0f"),
                             ("tables", "Huffman tables", ","), ("values", "raw values", ","), ("total", "total", ",")]))
    print("\nThe final file with the relative-index width fixed for every sparse tensor:\n")
    print(table(by_gap_bits, [("gap_bits", "gap bits", ""), ("bytes", "file bytes", ",")]))
    drop = 100 * (base["accuracy"] - quant["accuracy"])
    ratio = dense / export["bytes"]
    ok = ratio >= 40 and drop <= 0.5
    print(f"\nratio {ratio:.1f}x (target >= 40x), accuracy change {-drop:+.2f} points (target within 0.5): "
          f"{'PASS' if ok else 'FAIL'}")
    path = write_result("deep_compression", {"recipe": str(recipe_path.relative_to(ROOT)), "seconds": seconds,
                                             "steps": rows, "breakdown": breakdown, "by_gap_bits": by_gap_bits, "ratio": ratio,
                                             "accuracy_drop_points": drop, "pass": ok})
    print(f"wrote {path.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
