"""`workbench export SNAPSHOT_OR_SPEC --format FMT --out PATH [--data SPEC] [--json]`: with data, the exported
file's own test accuracy (through its runtime, as the export stage measures it) is printed too."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..core.errors import BadInput
from ..core.export import get_format
from ..core.snapshot_tools import MeasuredExport, export_measured
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
    measured = export_measured(args.spec, args.fmt, args.out, data_argument(args.data), args.arch, args.trust,
                               args.keep_head, args.replace_head)
    result = measured.result
    if getattr(args, "json", False):
        entry = result.to_dict()
        entry["details"] = {k: v for k, v in entry.get("details", {}).items() if k != "traceback"}
        print(json.dumps({**entry, "accuracy": measured.accuracy, "accuracy_problem": measured.problem or None}, default=str))
    if not result.verified:
        print(f"workbench: export to {args.fmt} failed verification: {result.error}", file=sys.stderr)
        return 1
    if not getattr(args, "json", False):
        print(f"{result.path}: {result.bytes:,} bytes, {args.fmt}, verified (max |diff| {result.max_abs_diff:.3g})"
              f"{_accuracy_words(measured)}")
    return 0


def _accuracy_words(measured: MeasuredExport) -> str:
    """The file's own test accuracy, as the export stage logs it (nothing without --data)."""
    if measured.problem:
        return f"; its test accuracy could not be measured ({measured.problem})"
    return "" if measured.accuracy is None else f"; test accuracy of the file {measured.accuracy:.2%}"
