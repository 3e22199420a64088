"""The report as Markdown: tables in Markdown, each plot a PNG file beside the .md, referenced relatively."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from .document import Block, Code, Heading, Text
from .plots import Plot
from .tables import Table


def cell(text: str) -> str:
    """A table cell: no line breaks, pipes escaped, no raw HTML."""
    text = " ".join(str(text).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;") or " "


def inline(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;").replace(">", "&gt;")


def table_md(table: Table) -> str:
    lines = ["| " + " | ".join(cell(h) for h in table.headers) + " |",
             "|" + "|".join(" ---: |" if num else " --- |" for num in table.numeric)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"*{inline(table.note)}*"]
    return "\n".join(lines)


def plot_file(md_path: Path, plot: Plot) -> Path:
    return md_path.with_name(f"{md_path.stem}-{plot.key}.png")


def render(title: str, blocks: list[Block], md_path: Path) -> tuple[str, list[Path]]:
    """The Markdown text, and the PNG files written beside `md_path`."""
    parts, images = [f"# {inline(title)}"], []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {inline(block.text)}")
        elif isinstance(block, Text):
            text = inline(block.text)
            parts.append(f"**{text}**" if block.kind.startswith("status-") or block.kind == "caption" else
                         f"*{text}*" if block.kind in ("note", "meta") else text)
        elif isinstance(block, Code):
            longest = 0
            for line in block.text.split("\n"):
                count = 0
                for ch in line:
                    count = count + 1 if ch == "`" else 0
                    longest = max(longest, count)
            fence = "`" * max(3, longest + 1)
            parts.append(f"{fence}{block.lang}\n{block.text.rstrip()}\n{fence}")
        elif isinstance(block, Table):
            parts.append(table_md(block))
        elif isinstance(block, Plot):
            path = plot_file(md_path, block)
            path.write_bytes(block.png)
            images.append(path)
            parts.append(f"![{inline(block.title)}]({quote(path.name)})")
    return "\n\n".join(parts) + "\n", images
