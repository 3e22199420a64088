"""Timing two or more ways of doing one job in the same process, alternately (A/B/A/B), so that load
from other jobs on a shared machine hits each alike; reported as the median with its spread."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def alternate(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each job, `repeats` rounds, each round running every job once in turn."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return times


def spread(values: list[float]) -> dict[str, float]:
    """Median, the 10th and 90th percentiles (min and max under 10 values) and their ratio."""
    ordered = sorted(values)
    if len(ordered) >= 10:
        deciles = statistics.quantiles(ordered, n=10)
        low, high = deciles[0], deciles[-1]
    else:
        low, high = ordered[0], ordered[-1]
    return {"median": statistics.median(ordered), "low": low, "high": high, "spread": high / low, "n": len(ordered)}


def ratios(slow: list[float], fast: list[float]) -> dict[str, float]:
    """Per-round speed ratios slow/fast (both timed in the same round): median with its spread."""
    return spread([s / f for s, f in zip(slow, fast)])
