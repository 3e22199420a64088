"""Latency against a reference, measured so that a loaded machine does not decide the answer.

Both models are timed in alternation (reference, model, reference, model, ...), each pass the median of
batch-1 forwards repeated, and the ratio is the median of the per-pass ratios: a burst of load from
another process slows both members of a pair, so it cancels in the ratio. Timing follows the tool's one
thread policy (`core.latency.LATENCY_THREADS`, the runs table and the benchmarks use the same).
"""
from __future__ import annotations

import statistics

import torch

from ..latency import LATENCY_THREADS, Timed, alternating_ms, torch_threads

__all__ = ["latency_ratio", "torch_threads"]


def latency_ratio(model: Timed, reference: Timed, example: torch.Tensor, passes: int = 5,
                  threads: int = LATENCY_THREADS, repeats: int = 20) -> tuple[float, float, float]:
    """(median of latency(model) / latency(reference) over alternating passes, model ms, reference ms); either may
    be a module or a deploy runtime's callable (`core/runtimes`)."""
    ratios, ours, theirs = [], [], []
    for i in range(max(1, passes)):
        own, ref = (statistics.median(t) for t in alternating_ms([model, reference], example, repeats,
                                                                   3 if i == 0 else 1, 2.0, threads=threads))
        ratios.append(own / ref if ref > 0 else float("inf"))
        ours.append(own)
        theirs.append(ref)
    return statistics.median(ratios), statistics.median(ours), statistics.median(theirs)
