"""Latency against a reference, measured so that a loaded machine does not decide the answer.

Both models are timed in alternation (reference, model, reference, model, ...), each pass the median of
a batch-1 forward repeated, and the ratio is the median of the per-pass ratios: a burst of load from
another process slows both members of a pair, so it cancels in the ratio. Timing runs with a fixed
number of torch threads (1 by default): on a 2-core machine shared with other jobs, two intra-op threads
wait on each other and one pass can read 10-50x slower than the next; one thread reads within a few
percent.
"""
from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator

import torch
from torch import nn

from ..metrics import latency_ms


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside the block (0: left as they are)."""
    if n <= 0:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def latency_ratio(model: nn.Module, reference: nn.Module, example: torch.Tensor, passes: int = 5,
                  threads: int = 1, repeats: int = 20) -> tuple[float, float, float]:
    """(median of latency(model) / latency(reference) over alternating passes, model ms, reference ms)."""
    ratios, ours, theirs = [], [], []
    with torch_threads(threads):
        for _ in range(max(1, passes)):
            ref = latency_ms(reference, example, warmup=3, repeats=repeats, max_seconds=2.0)
            own = latency_ms(model, example, warmup=3, repeats=repeats, max_seconds=2.0)
            ratios.append(own / ref if ref > 0 else float("inf"))
            ours.append(own)
            theirs.append(ref)
    return statistics.median(ratios), statistics.median(ours), statistics.median(theirs)
