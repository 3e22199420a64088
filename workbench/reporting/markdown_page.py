"""The report as Markdown: tables in Markdown, each plot a PNG file beside the .md, referenced relatively.

Every text from a run folder is inert here: HTML is escaped (`<script>` -> `&lt;script&gt;`, also inside the
recipe's code block), link and image brackets and pipes are escaped, control characters are shown escaped.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ..core.io import atomic_write_bytes
from .document import Block, Code, Heading, Text
from .plots import Plot
from .tables import Table


def _visible(text: str) -> str:
    """Control characters (ANSI escapes, NUL, bidi overrides) as their escapes; surrogates as U+FFFD."""
    return "".join(ch if ch.isprintable() or ch in " \t\n" else "\ufffd" if "\ud800" <= ch <= "\udfff"
                   else repr(ch)[1:-1] for ch in text)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inline(text: str) -> str:
    """Text on one line that renders as itself: no raw HTML, no link or image, no code span."""
    text = _html(" ".join(_visible(str(text)).split()))
    for ch in "\\`[]":
        text = text.replace(ch, "\\" + ch)
    return text


def cell(text: str) -> str:
    """A table cell: `inline`, with pipes escaped."""
    return inline(text).replace("|", "\\|") or " "


def table_md(table: Table) -> str:
    lines = ["| " + " | ".join(cell(h) for h in table.headers) + " |",
             "| " + " | ".join("---:" if num else "---" for num in table.numeric) + " |"]
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
            text = _visible(block.text).replace("<", "&lt;").replace(">", "&gt;")    # shown as is, but no raw tag
            longest = 0
            for line in text.split("\n"):
                count = 0
                for ch in line:
                    count = count + 1 if ch == "`" else 0
                    longest = max(longest, count)
            fence = "`" * max(3, longest + 1)
            parts.append(f"{fence}{block.lang}\n{text.rstrip()}\n{fence}")
        elif isinstance(block, Table):
            parts.append(table_md(block))
        elif isinstance(block, Plot):
            path = plot_file(md_path, block)
            atomic_write_bytes(path, block.png)
            images.append(path)
            parts.append(f"![{inline(block.title)}]({quote(path.name)})")
    return "\n\n".join(parts) + "\n", images
