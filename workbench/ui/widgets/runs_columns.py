"""The runs table's columns: what each snapshot cell says (latency with its spread, on eager and on the run's deploy
runtime; int8 agreement), and which columns are shown (those with something to show, less the ones the user hid
from the header's menu)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMenu, QTreeWidget

from ...core import runtimes
from .. import formatting as F

COLUMNS = ("Run / snapshot", "Val acc", "Test acc", "Params", "Non-zeros", "Sparsity", "FLOPs", "Compressed", "Ratio",
           "Latency", "Runtime latency", "Agreement")
TIPS = ("The run (its folder under the runs folder) and its snapshots, one per stage that changed the model",
        "Top-1 accuracy on the val split, where decisions are taken (– for a run without val, or from before val existed)",
        "Top-1 accuracy on the test split, what is reported", "Parameters", "Non-zero parameters",
        "Zeros among the prunable weights (Linear and convolution weights)", "FLOPs of one forward pass (batch 1)",
        "The smallest file this snapshot was written to and read back from",
        "Baseline fp32 bytes / compressed bytes",
        "CPU latency in PyTorch eager of one batch of size 1: median ms (p10–p90) of interleaved repeats, one thread; "
        "'noisy' when the spread is too wide for the median to mean anything",
        "The same on the run's deploy runtime (the recipe's runtime:, chosen next to the device): the snapshot exported "
        "to it, its outputs checked against eager, then timed the same way; — when it could not run there (why: the "
        "cell's tooltip)",
        "int8 snapshots: top-1 agreement of their outputs with their float input's on val")
LATENCY_COL, RUNTIME_COL, AGREEMENT_COL = (COLUMNS.index(c) for c in ("Latency", "Runtime latency", "Agreement"))
OPTIONAL = (RUNTIME_COL, AGREEMENT_COL)       # shown only while some snapshot has something to show there


@dataclass(frozen=True)
class Cell:
    text: str
    tip: str
    greyed: bool = False


def runtime_of(row: dict) -> str | None:
    """The deploy runtime a snapshot was measured on besides eager (the other key of its `latency`), or None."""
    latency = row.get("latency")
    known = runtimes.names()[1:]          # a name the tool does not know (a hostile file's) is not shown
    return next((k for k in latency if k in known), None) if isinstance(latency, dict) else None


def latency_cell(runtime: str, fig: object, why: object = None) -> Cell:
    """A latency figure as "median ms (p10–p90)"; "noisy" greyed (the numbers in the tooltip) when its spread is too
    wide; "—" with why it is missing."""
    text = F.latency(fig)
    return Cell(text, F.latency_tip(runtime, fig, why), greyed=text in ("noisy", "—"))


def as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def snapshot_cells(row: dict) -> list[Cell]:
    """The cells of a snapshot row after its name, one per column."""
    plain = [F.percent(row.get("val_accuracy"), 2), F.percent(row.get("accuracy"), 2), F.count(row.get("params")),
             F.count(row.get("nonzero_params")), F.percent(row.get("sparsity")), F.human(row.get("flops")),
             F.size(row.get("compressed_bytes")), F.ratio(row.get("compression_ratio"))]
    out = [Cell(text, f"{COLUMNS[col]}: {text}") for col, text in enumerate(plain, start=1)]
    latency = as_dict(row.get("latency"))
    if isinstance(latency.get("eager"), dict):
        out.append(latency_cell("eager", latency["eager"]))
    else:                         # a snapshot from before latency had its spread: the median alone
        out.append(Cell(F.ms(row.get("latency_ms")), f"eager: median {F.ms(row.get('latency_ms'))} (no spread recorded)"))
    runtime = runtime_of(row)
    whys = as_dict(row.get("latency_why"))
    out.append(latency_cell(runtime, latency.get(runtime), whys.get(runtime)) if runtime else Cell("", ""))
    agreement = row.get("agreement")
    number = isinstance(agreement, int | float) and not isinstance(agreement, bool)
    out.append(Cell(F.percent(agreement, 1), "Top-1 agreement with the float model on val: " + F.percent(agreement, 2))
               if number else Cell("", ""))
    return out


class ColumnChooser:
    """Which columns of the runs table are shown: the optional ones while some row fills them, and every column
    the user has not hidden (right-click the header)."""

    def __init__(self, tree: QTreeWidget) -> None:
        self.tree = tree
        self.hidden: set[int] = set()          # hidden by the user
        self.filled: set[int] = set()          # optional columns some snapshot fills
        header = tree.header()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self.menu)

    def update(self, rows: list[dict]) -> None:
        """Show the optional columns some row fills; the runtime column titled after the runtime when all agree."""
        runtimes = {r for r in map(runtime_of, rows) if r}
        self.filled = ({RUNTIME_COL} if runtimes else set()) | (
            {AGREEMENT_COL} if any(isinstance(r.get("agreement"), int | float) for r in rows) else set())
        title = f"{next(iter(runtimes))} latency" if len(runtimes) == 1 else COLUMNS[RUNTIME_COL]
        self.tree.headerItem().setText(RUNTIME_COL, title)
        self.apply()

    def shown(self, col: int) -> bool:
        return col not in self.hidden and (col not in OPTIONAL or col in self.filled)

    def apply(self) -> None:
        for col in range(1, len(COLUMNS)):
            self.tree.setColumnHidden(col, not self.shown(col))

    def set_hidden(self, col: int, hidden: bool) -> None:
        (self.hidden.add if hidden else self.hidden.discard)(col)
        self.apply()

    def menu(self, pos: QPoint) -> QMenu:
        """The header's menu: a check box per column (the name column always stays)."""
        menu = QMenu(self.tree)
        for col in range(1, len(COLUMNS)):
            act = menu.addAction(self.tree.headerItem().text(col))
            act.setCheckable(True)
            act.setChecked(col not in self.hidden)
            act.setEnabled(col not in OPTIONAL or col in self.filled)
            act.toggled.connect(lambda on, c=col: self.set_hidden(c, not on))
        menu.popup(self.tree.header().mapToGlobal(pos))
        return menu
