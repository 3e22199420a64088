"""Latency figures that mean something: one thread policy, medians of repeats with their spread.

Every latency the tool reports (the snapshot rows, the `auto` stage's ratios, the benchmarks) is timed
through `timing_threads()`, so the runs table, the auto stage and the benchmarks agree: torch's intra-op
threads are set to `LATENCY_THREADS` while timing and restored afterwards. On a small machine shared with
other jobs, two intra-op threads wait on each other and one pass can read 10-50x slower than the next;
one thread reads within a few percent.

A figure is the median of `repeats` forward passes with its p10 and p90; when p90/p10 is above
`NOISY_SPREAD` the figure is flagged `noisy` (the numbers are kept, but they say nothing). A ratio against
another model is measured alternately in one process (A, B, A, B, ...), so that a burst of outside load
hits both members of a pair and cancels.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

LATENCY_THREADS = 1        # torch intra-op threads while timing, everywhere in the tool
NOISY_SPREAD = 1.5         # p90 / p10 above this: the figure is noise, and says so
REPEATS = 30
Clock = Callable[[], float]
Timed = Callable[[torch.Tensor], Any]    # what is timed: a module, or any tensor -> outputs callable (a runtime's)


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


@contextlib.contextmanager
def timing_threads() -> Iterator[None]:
    """The tool's one thread policy for timing (`LATENCY_THREADS`), restored afterwards."""
    with torch_threads(LATENCY_THREADS):
        yield


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Denormal floats read and written as zero on the CPU inside the block (as inference runtimes do)."""
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (linear between neighbours)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def is_noisy(p10: float, p90: float, bound: float = NOISY_SPREAD) -> bool:
    """True when the spread is too wide for the figure to mean anything (p90/p10 above `bound`)."""
    return p10 <= 0 or p90 / p10 > bound


def summary(times_ms: list[float], threads: int, batch: int) -> dict[str, Any]:
    """{"median_ms", "p10_ms", "p90_ms", "repeats", "threads", "batch"} (+ "noisy": true when it is)."""
    p10, p90 = quantile(times_ms, 0.1), quantile(times_ms, 0.9)
    out: dict[str, Any] = {"median_ms": statistics.median(times_ms), "p10_ms": p10, "p90_ms": p90,
                           "repeats": len(times_ms), "threads": threads, "batch": batch}
    if is_noisy(p10, p90):
        out["noisy"] = True
    return out


def _timed(model: Timed, example: torch.Tensor, clock: Clock) -> float:
    t0 = clock()
    model(example)
    if example.is_cuda:              # CUDA runs asynchronously: wait for it
        torch.cuda.synchronize()
    return (clock() - t0) * 1000.0


def alternating_ms(models: Sequence[Timed], example: torch.Tensor, repeats: int = REPEATS, warmup: int = 3,
                   max_seconds: float = 5.0, clock: Clock = time.perf_counter,
                   threads: int = LATENCY_THREADS) -> list[list[float]]:
    """Per-pass ms of each model, timed in alternation (m0, m1, ..., m0, m1, ...) under the tool's thread
    policy (`threads` only where a setting asks for another), denormals flushed; at least 5 rounds, at most
    `repeats`, stopping after `max_seconds`."""
    for m in models:
        if isinstance(m, nn.Module):
            m.eval()
    times: list[list[float]] = [[] for _ in models]
    with torch_threads(threads), denormals_flushed(), torch.inference_mode():
        for m in models:
            for _ in range(warmup):
                m(example)
        start = clock()
        for _ in range(max(1, repeats)):
            for m, t in zip(models, times):
                t.append(_timed(m, example, clock))
            if clock() - start > max_seconds and len(times[0]) >= 5:
                break
    return times


def latency_stats(model: Timed, example: torch.Tensor, repeats: int = REPEATS, warmup: int = 5,
                  max_seconds: float = 5.0, clock: Clock = time.perf_counter) -> dict[str, Any]:
    """The latency figure of one model (or a deploy runtime's callable, `core/runtimes`): median, p10, p90 of
    batch forward passes, repeats, threads, batch."""
    times = alternating_ms([model], example, repeats, warmup, max_seconds, clock)[0]
    return summary(times, LATENCY_THREADS, int(example.shape[0]) if example.dim() else 1)


def ratio_stats(model: Timed, reference: Timed, example: torch.Tensor, repeats: int = REPEATS,
                max_seconds: float = 5.0, clock: Clock = time.perf_counter,
                runtime: str = "eager") -> dict[str, Any]:
    """latency(model) / latency(reference), timed alternately in one process: {"runtime", "value" (median of
    the per-pair ratios), "p10", "p90", "repeats"} (+ "noisy": true when p90/p10 of the ratios is too wide)."""
    own, ref = alternating_ms([model, reference], example, repeats, 3, max_seconds, clock)
    ratios = [a / b if b > 0 else float("inf") for a, b in zip(own, ref)]
    p10, p90 = quantile(ratios, 0.1), quantile(ratios, 0.9)
    out: dict[str, Any] = {"runtime": runtime, "value": statistics.median(ratios), "p10": p10, "p90": p90,
                           "repeats": len(ratios), "threads": LATENCY_THREADS}
    if is_noisy(p10, p90):
        out["noisy"] = True
    return out
