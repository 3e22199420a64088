"""Shareable reports of runs: one self-contained HTML file, the same as Markdown with PNG plots, and a CSV.

    files = build_report(["runs/dc", "runs/structured"], "report.html")

`collect` reads run folders into plain data, `plots` draws the figures (matplotlib, Agg), `document` lays the
report out as blocks, `html_page` and `markdown_page` render them, `tables` formats numbers the same way for
both. `tensorboard` is the optional TensorBoard listener of `workbench run --tensorboard`. Only `workbench.core`
is imported here, never the GUI.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import BadInput
from ..core.io import atomic_write_bytes

CSV_NAME = "snapshots.csv"


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    csv: Path
    images: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)    # run folders left out: one line each, naming the folder


def check_out(out: str | Path) -> Path:
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"--out {out}: is a folder; name the HTML file to write (e.g. {out / 'report.html'})")
    parent = out.parent
    if not parent.is_dir():
        raise BadInput(f"--out {out}: the folder {parent} does not exist")
    return out


def build_report(run_dirs: list[str | Path], out: str | Path) -> ReportFiles:
    """Write `out` (HTML), `out` with .md (plus its PNG plots) and snapshots.csv beside it. A run folder that cannot
    be read is left out (listed in `skipped`); BadInput when none can be read."""
    out = check_out(out)               # first: a wrong --out is said before anything heavy is imported
    from . import html_page, markdown_page
    from .collect import collect
    from .document import build
    from .tables import write_csv

    skipped: list[str] = []
    runs = collect(list(run_dirs), skipped)
    title, blocks = build(runs)
    md_path = out.with_suffix(".md") if out.suffix.lower() != ".md" else out.with_name(out.stem + ".report.md")
    try:
        atomic_write_bytes(out, html_page.render(title, blocks).encode("utf-8", "replace"))
        markdown, images = markdown_page.render(title, blocks, md_path)
        atomic_write_bytes(md_path, markdown.encode("utf-8", "replace"))
        csv_path = write_csv(runs, out.with_name(CSV_NAME))
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot write there ({exc.strerror or type(exc).__name__})") from None
    return ReportFiles(out, md_path, csv_path, images, skipped)
