"""`workbench export SNAPSHOT_OR_SPEC --format FMT --out PATH`."""
from __future__ import annotations

import sys

from ..core.snapshot_tools import export_spec


def export_command(args) -> int:
    result = export_spec(args.spec, args.fmt, args.out, args.data, args.arch, args.trust)
    if result.verified:
        print(f"{result.path}: {result.bytes:,} bytes, {args.fmt}, verified (max |diff| {result.max_abs_diff:.3g})")
        return 0
    print(f"workbench: export to {args.fmt} failed verification: {result.error}", file=sys.stderr)
    return 1
