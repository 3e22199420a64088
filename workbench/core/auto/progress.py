"""The `auto` stage's target in its own units, and the stage's one progress bar.

The stage runs other stages inside it (option-table trials, prune, quantize, fine-tuning), each with a
progress of its own that starts again at 0 %; shown as they come, the stage's bar went backwards (50 % ->
12 %). `Overall` maps each of them into the part of the bar that belongs to the current phase (the option
table first, then each candidate's share of the epoch budget) and never lets the bar move back.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

from ..events import Event, Progress

TABLE_SHARE = 0.15          # of the bar: the option table (trials of every option on val)

TARGETS = {"ratio": "compressed bytes", "latency": "latency ms", "flops": "FLOPs", "params": "non-zero parameters"}
UNITS = {"ratio": "fp32 bytes", "latency": "latency", "flops": "FLOPs", "params": "non-zero parameters"}


def check_target(value: dict[str, float]) -> str | None:
    if len(value) != 1:
        return "give exactly one of ratio, latency, flops, params (e.g. {ratio: 40} or {latency: 0.5})"
    key, v = next(iter(value.items()))
    if key not in TARGETS:
        return f"unknown target {key!r}: one of ratio (N times smaller), latency, flops, params (fractions)"
    if key == "ratio" and not 1.0 < v <= 1e5:
        return f"ratio must be greater than 1 (a file N times smaller than the fp32 baseline), got {v}"
    if key != "ratio" and not 0.0 < v < 1.0:
        return f"{key} is a fraction of the baseline's and must be in (0, 1), got {v}"
    return None


def describe_target(kind: str, value: float, base: float, target: float) -> str:
    """The target in its own units: `target: 0.50 of the stage input's latency (1.23 ms -> 0.615 ms)`."""
    if kind == "ratio":
        return f"target: {value:g}x smaller than the baseline's fp32 bytes ({base:,.0f} B -> {target:,.0f} B)"
    if kind == "latency":
        return f"target: {value:.2f} of the stage input's latency ({base:.3g} ms -> {target:.3g} ms)"
    return f"target: {value:.2f} of the stage input's {UNITS[kind]} ({base:,.0f} -> {target:,.0f})"


def fmt_cost(kind: str, base: float, cost: float | None) -> str:
    """A cost as the log shows it: `40.0x (5,300 B)`, or `0.615 ms (0.500 of the stage input)`."""
    if cost is None or not math.isfinite(cost):
        return "n/a"
    if kind == "ratio":
        return f"{base / cost:.1f}x ({cost:,.0f} B)"
    return f"{cost:,.4g}{' ms' if kind == 'latency' else ''} ({cost / base:.3f} of the stage input)"


class Overall:
    """Progress events of the stage and its sub-stages -> one forward-only bar in [0, 1]."""

    def __init__(self, epochs: int, max_candidates: int) -> None:
        self.epochs, self.max_candidates = epochs, max(1, max_candidates)
        self.start, self.span, self.phase = 0.0, TABLE_SHARE, "option table"
        self.shown = 0.0
        self.candidates = 0

    def candidate(self, spent: float, epochs: int) -> None:
        """A candidate starts: `spent` epochs of the budget are used, it gets `epochs` more."""
        self.candidates += 1
        rest = 1.0 - TABLE_SHARE
        if self.epochs > 0:
            self.start = TABLE_SHARE + rest * min(1.0, spent / self.epochs)
            self.span = rest * min(1.0, epochs / self.epochs)
        else:                           # no fine-tuning budget: the candidates are the measure
            self.start = TABLE_SHARE + rest * min(1.0, (self.candidates - 1) / self.max_candidates)
            self.span = rest / self.max_candidates
        self.phase = f"candidate {self.candidates}"

    def map(self, event: Progress) -> Progress:
        fraction = event.done / event.total if event.total > 0 else 0.0
        value = self.start + self.span * min(1.0, max(0.0, fraction))
        self.shown = min(1.0, max(self.shown, value))
        return Progress(self.shown, 1.0, f"{self.phase}: {event.text}" if event.text else self.phase)

    def events(self, events: Iterator[Event]) -> Iterator[Event]:
        """The stage's events with every Progress mapped onto the one bar; a last 100 % when they end."""
        for event in events:
            yield self.map(event) if isinstance(event, Progress) else event
        self.shown = 1.0
        yield Progress(1.0, 1.0, "done")

