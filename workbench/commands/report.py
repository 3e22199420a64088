"""`workbench report RUN_DIR [RUN_DIR ...] --out report.html`: a shareable report of one run, or several compared."""
from __future__ import annotations

import sys

from ..core.limits import clip
from ..reporting import build_report


def report_command(args) -> int:
    files = build_report(args.run_dirs, args.out)
    for line in files.skipped:            # run folders that could not be read: one line each, the rest reported
        print(f"workbench: skipped {clip(line, 400)}", file=sys.stderr)
    print(f"report: {files.html}")
    print(f"markdown: {files.markdown} ({len(files.images)} PNG plots beside it)")
    print(f"snapshots: {files.csv}")
    return 0
