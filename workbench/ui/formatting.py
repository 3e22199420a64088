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



def _figure_numbers(fig: object) -> tuple[float, float, float] | None:
    """(median, p10, p90) of a latency figure ({"median_ms", "p10_ms", "p90_ms", ...}), None when not all numbers."""
    values = [fig.get(k) for k in ("median_ms", "p10_ms", "p90_ms")] if isinstance(fig, dict) else []
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return (numbers[0], numbers[1], numbers[2]) if len(numbers) == 3 else None


def latency(fig: object) -> str:
    """A latency figure as "median ms (p10–p90)" (µs below 1 ms); "noisy" when its spread is too wide to mean anything; "—" for none."""
    numbers = _figure_numbers(fig)
    if numbers is None or not isinstance(fig, dict):
        return "—"
    if fig.get("noisy"):
        return "noisy"
    median, p10, p90 = numbers
    scale, unit = (1000.0, "µs") if median < 1 else (1.0, "ms")      # 38.7 µs (38.1–46.4), not 0.0387 ms (0.0381–0.0464)
    return f"{median * scale:.3g} {unit} ({p10 * scale:.3g}–{p90 * scale:.3g})"


def latency_tip(runtime: str, fig: object, why: object = None) -> str:
    """The whole figure in words, for a tooltip: the numbers, repeats, threads and batch; why there is none."""
    numbers = _figure_numbers(fig)
    if numbers is None or not isinstance(fig, dict):
        return f"{runtime}: not measured" + (f": {why}" if isinstance(why, str) and why else "")
    median, p10, p90 = numbers
    text = (f"{runtime}: median {median:.4g} ms, p10 {p10:.4g} ms, p90 {p90:.4g} ms over {fig.get('repeats', '?')} "
            f"repeats ({fig.get('threads', '?')} thread(s), batch {fig.get('batch', '?')})")
    if fig.get("noisy"):
        spread = f"p90/p10 = {p90 / p10:.2g}, " if p10 > 0 else ""
        text += f"\nnoisy: {spread}too wide a spread for the median to mean anything"
    return text
