"""`workbench export SNAPSHOT_OR_SPEC --format FMT --out PATH`."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..core.errors import BadInput
from ..core.export import get_format
from ..core.snapshot_tools import export_spec
from .data_arg import data_argument


def export_command(args) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise BadInput(f"--out {out}: is a folder; give a file name (e.g. {out / ('model' + get_format(args.fmt).suffix)})")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"--out {out}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise BadInput(f"--out {out}: cannot write into {parent} (permission denied)")
    result = export_spec(args.spec, args.fmt, args.out, data_argument(args.data), args.arch, args.trust, args.keep_head,
                         args.replace_head)
    if result.verified:
        print(f"{result.path}: {result.bytes:,} bytes, {args.fmt}, verified (max |diff| {result.max_abs_diff:.3g})")
        return 0
    print(f"workbench: export to {args.fmt} failed verification: {result.error}", file=sys.stderr)
    return 1
