"""Numbers as people read them."""
from __future__ import annotations

import re

_STAGE_PATH = re.compile(r"\bstages\[(\d+)\](\.?)")


def human(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def count(n: int | None) -> str:
    return "–" if n is None else f"{int(n):,}"


def size(nbytes: float | None) -> str:
    if not nbytes:
        return "–"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= div:
            return f"{nbytes / div:.2f} {unit}"
    return f"{nbytes:.0f} B"


def percent(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def ratio(x: float | None) -> str:
    return "–" if not x else f"{x:.1f}×"


def ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g} ms"


def shape(s) -> str:
    return "×".join(str(v) for v in s) if s else ""


def one_based(message: str) -> str:
    """Stage numbers as the cards show them: "stages[1].bits.linear: ..." -> "stage 2 bits.linear: ..." (recipe field
    paths count from 0; the cards, the log and the dialogs count from 1)."""
    return _STAGE_PATH.sub(lambda m: f"stage {int(m.group(1)) + 1}" + (" " if m.group(2) else ""), message)
