"""Reading a report back: an HTML parser that checks tags balance and collects tables, figures and links."""
from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

QUICK_RECIPE = """name: quick report sample
model: sample:digits_mlp
data: sample:digits
seed: 0
stages:
  - kind: train
    epochs: 1
  - kind: prune
    sparsity: 0.8
    schedule: oneshot
    finetune_epochs: 1
  - kind: quantize
    method: kmeans
    bits: 4
  - kind: sensitivity
    sparsities: [0.5, 0.9]
  - kind: export
    formats: [packed, onnx]
"""

STRUCTURED_RECIPE = """name: structured report sample
model: sample:digits_mlp
data: sample:digits
seed: 1
stages:
  - kind: prune
    structured: true
    method: l1
    sparsity: 0.5
    schedule: oneshot
    finetune_epochs: 1
"""


class ReportParser(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects tables, <img>s, figures, links, headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: list[list[list[str]]] = []      # every table: rows of cell texts (header row first)
        self.imgs: list[dict] = []
        self.figure_ids: list[str] = []
        self.attrs_seen: list[tuple[str, str, str]] = []   # (tag, attribute, value)
        self.headings: list[str] = []
        self.paragraphs: list[str] = []
        self.pre: list[str] = []
        self._cell: list[str] | None = None
        self._text: list[str] | None = None
        self._capture: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k, v in attrs:
            self.attrs_seen.append((tag, k, v or ""))
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "figure":
            self.figure_ids.append(a.get("id", ""))
        elif tag in ("h1", "h2", "h3", "p", "pre"):
            self._capture, self._text = tag, []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}> at {self.getpos()}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == self._capture and self._text is not None:
            text = "".join(self._text).strip()
            (self.headings if tag.startswith("h") else self.pre if tag == "pre" else self.paragraphs).append(text)
            self._capture = self._text = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._text is not None:
            self._text.append(data)


def parse(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    return parser


def table_with(parser: ReportParser, headers: list[str], nth: int = 0) -> list[dict[str, str]]:
    """The nth table whose header row starts with `headers`, as dicts keyed by header."""
    found = [t for t in parser.tables if t and t[0][: len(headers)] == headers]
    table = found[nth]
    return [dict(zip(table[0], row)) for row in table[1:]]


def external_references(html: str, parser: ReportParser) -> list[str]:
    """Everything that would make a browser fetch something from outside the file."""
    bad = [f"<{t} {k}={v[:60]}>" for t, k, v in parser.attrs_seen if k in ("src", "href", "srcset", "action", "data", "poster")
           and not (v.startswith("#") or v.startswith("data:image/png;base64,"))]
    bad += [m.group(0) for m in re.finditer(r"@import|url\(\s*['\"]?(?!data:|#)[^)]*\)", html)]
    bad += [f"<{t}>" for t in ("script", "link", "iframe", "object", "embed") if re.search(rf"<{t}\b", html, re.I)]
    return bad


def number(text: str) -> tuple[float, float]:
    """A cell's number and the tolerance its shown decimals allow: '97.77%' -> (97.77, 0.005)."""
    clean = text.replace(",", "").rstrip("%x").strip()
    decimals = len(clean.split(".")[1]) if "." in clean else 0
    return float(clean), 0.5 * 10 ** -decimals + 1e-9
