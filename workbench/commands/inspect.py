"""`workbench inspect SPEC`: the per-layer table."""
from __future__ import annotations

import json

from ..core.data.preprocess import describe as describe_preprocessing


def human(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def format_table(info: dict) -> str:
    rows = [("layer", "type", "shape", "params", "non-zero", "sparsity", "FLOPs")]
    for r in info["layers"]:
        rows.append((r["name"], r["type"], "x".join(map(str, r["shape"])), f"{r['params']:,}",
                     f"{r['nonzero_params']:,}", _pct(r["sparsity"]), human(r["flops"])))
    t = info["total"]
    rows.append(("TOTAL", "", "", f"{t['params']:,}", f"{t['nonzero_params']:,}", _pct(t["sparsity"]), human(t["flops"])))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        if k == len(rows) - 1:
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        lines.append("  ".join(cell.ljust(w) if c < 3 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))))
    lines.append(f"model {info['model']}, input {'x'.join(map(str, info['input_shape']))}, "
                 f"dense fp32 {t['dense_bytes'] / 1e6:.2f} MB")
    if info.get("preprocessing"):
        origin, steps = describe_preprocessing(info["preprocessing"])
        lines.append(f"preprocessing ({origin}): {steps}")
    if info.get("accuracy") is not None:
        lines.append(f"test accuracy on {info['data']}: {info['accuracy']:.4f}")
    return "\n".join(lines)


def inspect_command(args) -> int:
    from ..core.inspection import inspect
    from .data_arg import data_argument
    info = inspect(args.spec, data_argument(args.data), args.arch, args.trust, seed=args.seed, keep_head=args.keep_head,
                   replace_head=args.replace_head)
    print(json.dumps(info, indent=1) if args.json else format_table(info))
    return 0
