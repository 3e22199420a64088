"""The report as one self-contained HTML file: inline CSS, plots as base64 PNG `data:` URIs, no external request.

Every text taken from a run folder goes through `html.escape`; the page skeleton is a `string.Template`.
"""
from __future__ import annotations

import base64
import html
from string import Template

from .document import Block, Code, Heading, Text
from .plots import Plot
from .tables import Table

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="workbench report">
<title>$title</title>
<style>
$css
</style>
</head>
<body>
<header>
<h1>$title</h1>
<nav>$nav</nav>
</header>
<main>
$body
</main>
</body>
</html>
""")

CSS = """
:root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --head: #f3f4f6; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: #fafafa; }
header { background: #1f2937; color: #f9fafb; padding: 14px 28px 10px; }
header h1 { margin: 0 0 6px; font-size: 22px; font-weight: 600; }
nav a { color: #bfdbfe; margin-right: 14px; text-decoration: none; font-size: 13px; }
main { max-width: 1320px; margin: 0 auto; padding: 8px 28px 40px; }
h2 { margin: 34px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); font-size: 20px; }
h3 { margin: 24px 0 8px; font-size: 16px; }
p { margin: 6px 0; }
p.meta, p.note { color: var(--muted); font-size: 13px; word-break: break-all; }
p.caption { margin-top: 14px; font-weight: 600; font-size: 13px; }
p.status { display: inline-block; padding: 3px 10px; border-radius: 4px; font-weight: 600; }
p.status-finished { background: #dcfce7; color: #166534; }
p.status-failed { background: #fee2e2; color: #991b1b; }
p.status-cancelled, p.status-interrupted, p.status-running, p.status-unknown { background: #fef3c7; color: #92400e; }
.scroll { overflow-x: auto; margin: 6px 0 10px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { color: var(--muted); }
tbody tr:nth-child(even) { background: #f9fafb; }
figure { margin: 8px 0 14px; background: #fff; border: 1px solid var(--line); padding: 6px; display: inline-block; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; }
pre { background: #fff; border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto; font-size: 12.5px;
      max-height: 420px; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cls(classes: str) -> str:
    return f' class="{esc(classes)}"' if classes else ""


def table_html(table: Table) -> str:
    head = "".join(f"<th{_cls('num' if num else '')}>{esc(h)}</th>" for h, num in zip(table.headers, table.numeric))
    rows = []
    for row in table.rows:
        cells = []
        for value, num in zip(row, table.numeric):
            classes = " ".join(c for c in ("num" if num else "", "na" if value == "n/a" else "") if c)
            cells.append(f"<td{_cls(classes)}>{esc(value)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    note = f'<p class="note">{esc(table.note)}</p>' if table.note else ""
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows)
            + f"\n</tbody></table></div>{note}")


def plot_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<figure class="plot" id="plot-{esc(plot.key)}"><img alt="{esc(plot.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(plot.title)}</figcaption></figure>")


def block_html(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{esc(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{esc(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        kind = block.kind
        classes = f"status {kind}" if kind.startswith("status-") else kind
        return f"<p{_cls(classes)}>{esc(block.text)}</p>"
    if isinstance(block, Code):
        return f'<pre><code class="language-{esc(block.lang)}">{esc(block.text)}</code></pre>'
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Plot):
        return plot_html(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def render(title: str, blocks: list[Block]) -> str:
    nav = " ".join(f'<a href="#{esc(b.anchor)}">{esc(b.text)}</a>' for b in blocks if isinstance(b, Heading) and b.anchor)
    body = "\n".join(block_html(b) for b in blocks)
    return PAGE.substitute(title=esc(title), css=CSS.strip(), nav=nav, body=body)
