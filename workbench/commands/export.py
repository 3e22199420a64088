"""`workbench export SNAPSHOT_OR_SPEC --format FMT --out PATH`."""
from __future__ import annotations

import sys

from ..core.data import load_data
from ..core.export import ExportSource, export_model, get_format
from ..core.models import load_model


def export_command(args) -> int:
    get_format(args.fmt)
    data = load_data(args.data) if args.data else None
    loaded = load_model(args.spec, data.input_shape if data else None, data.num_classes if data else None,
                        arch=args.arch, trust=args.trust)
    result = export_model(ExportSource.from_loaded(loaded, data), args.fmt, args.out)
    if result.verified:
        print(f"{result.path}: {result.bytes:,} bytes, {args.fmt}, verified (max |diff| {result.max_abs_diff:.3g})")
        return 0
    print(f"workbench: export to {args.fmt} failed verification: {result.error}", file=sys.stderr)
    return 1
