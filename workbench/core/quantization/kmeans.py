"""Fast 1-D k-means for weight sharing (Deep Compression, Han et al. 2016).

In one dimension every cluster is an interval of the sorted values, so the state of a run is the
k + 1 interval boundaries (`seg`) and, after one sort, each Lloyd step is: centroids = cluster means
from a cumulative sum, boundaries = `searchsorted` of the midpoints between neighbouring centroids.
A step costs O(k log n), not O(n k), so iterating to convergence is cheap (over-relaxed steps, see
`_lloyd`): 1 million weights into 256 clusters converge in about 0.1 s.

Empty clusters are refilled by default: the cluster with the largest squared error is split at its
mean into two (each part's mean becomes a centroid), which lowers the error, so every cluster is used
whenever there are at least k distinct values. The error never increases from one step to the next
(update, split and assignment each lower it or keep it). A run stops when the assignment no longer
changes, when the error falls by less than `tol` (relative) in a step, or after `max_iter` steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

INITS = ["linear", "density", "random"]
MAX_ITER = 10_000        # Lloyd steps at most: a bound, not a schedule (runs stop at convergence)
TOL = 1e-9               # stop when a step lowers the squared error by less than this fraction of it
OMEGA_GROWTH = 1.5       # over-relaxation: the factor grows by this after each step it helped, up to
OMEGA_MAX = 10.0


@dataclass
class KMeansResult:
    centroids: torch.Tensor   # 1-D, sorted ascending, only clusters that own at least one value
    labels: torch.Tensor      # int64, same length as the input, index into `centroids`
    iterations: int


def initial_centroids(sorted_values: torch.Tensor, k: int, init: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """k starting centroids (float64, ascending) for sorted 1-D values.

    linear:  evenly spaced between min and max (best in Deep Compression: keeps the rare large weights)
    density: evenly spaced in the cumulative distribution (quantiles: centroids crowd where weights do)
    random:  k values picked at random from the weights (Forgy)
    """
    n = sorted_values.numel()
    if init == "linear":
        return torch.linspace(float(sorted_values[0]), float(sorted_values[-1]), k, dtype=torch.float64)
    if init == "density":
        q = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        return sorted_values[(q * n).long().clamp_(0, n - 1)].double()
    if init == "random":
        pick = torch.randperm(n, generator=generator)[:k]
        return sorted_values[pick].double().sort().values
    raise ValueError(f"unknown k-means initialisation {init!r} (use {', '.join(INITS)})")


class _Sorted:
    """Sorted values with cumulative sums (float64), so any interval's count, sum and mean are O(1)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        wide = values.astype(np.float64)
        self.csum = np.concatenate([[0.0], np.cumsum(wide)])
        self.squares = float(np.dot(wide, wide))
        self._csq: np.ndarray | None = None           # cumulative squares, only once a cluster runs empty

    def assign(self, centroids: np.ndarray) -> np.ndarray:
        """Nearest-centroid intervals: boundaries at the midpoints (ties go right; equal values stay together)."""
        mids = ((centroids[1:] + centroids[:-1]) * 0.5).astype(self.values.dtype)
        return np.concatenate([[0], np.searchsorted(self.values, mids, side="left"), [self.values.size]])

    def means(self, seg: np.ndarray) -> tuple[np.ndarray, float]:
        """(mean per interval, total squared error about the means); every interval must be non-empty."""
        sums = np.diff(self.csum[seg])
        mean = sums / np.diff(seg)
        return mean, max(self.squares - float(np.dot(sums, mean)), 0.0)

    def split_worst(self, seg: np.ndarray, k: int) -> np.ndarray:
        """Drop empty intervals, then split the worst ones at their means until there are k (or none can split).

        Each part's mean is a better centroid for it than the whole's, so a split never raises the error."""
        seg = np.unique(seg)
        if self._csq is None:
            wide = self.values.astype(np.float64)
            self._csq = np.concatenate([[0.0], np.cumsum(wide * wide)])
        while seg.size - 1 < k:
            start, end = seg[:-1], seg[1:]
            sums = self.csum[end] - self.csum[start]
            mean = sums / (end - start)
            sse = self._csq[end] - self._csq[start] - sums * mean
            splittable = self.values[start] != self.values[end - 1]      # at least two distinct values
            order = np.argsort(-np.where(splittable, sse, -1.0), kind="stable")
            worst = order[:min(k - (seg.size - 1), int(splittable.sum()))]
            if worst.size == 0:
                break
            cut = np.searchsorted(self.values, mean[worst].astype(self.values.dtype), side="left")
            low = np.searchsorted(self.values, self.values[start[worst]], side="right")    # past the smallest value
            high = np.searchsorted(self.values, self.values[end[worst] - 1], side="left")  # at the largest
            seg = np.union1d(seg, np.clip(cut, low, high))
        return seg


def _fill(ordered: _Sorted, seg: np.ndarray, k: int, split_empty: bool) -> np.ndarray:
    if bool(np.all(seg[1:] > seg[:-1])):
        return seg
    return ordered.split_worst(seg, k) if split_empty else np.unique(seg)


def _lloyd(ordered: _Sorted, seg: np.ndarray, k: int, max_iter: int, tol: float, split_empty: bool) -> tuple[np.ndarray, int]:
    """Lloyd steps from the intervals `seg`: (final intervals, all non-empty; steps taken).

    Over-relaxed: a step first tries centroids `omega` times as far as the means (omega grows while that
    works) and keeps the try only if it lowers the error more than nothing, else takes the plain step. The
    fixed points are Lloyd's, the error never rises, and it stops when a plain step changes nothing.
    """
    seg = _fill(ordered, seg, k, split_empty)
    mean, error = ordered.means(seg)
    origin, omega, iterations = mean, 1.0, 0           # origin: the centroids `seg` was assigned from
    while iterations < max_iter:
        iterations += 1
        if omega > 1.0:
            trial = origin + omega * (mean - origin)
            new = ordered.assign(trial)
            if bool(np.all(trial[1:] > trial[:-1]) and np.all(new[1:] > new[:-1])):
                new_mean, new_error = ordered.means(new)
                if new_error < error:
                    omega = min(omega * OMEGA_GROWTH, OMEGA_MAX)
                    done = error - new_error <= tol * new_error
                    seg, origin, mean, error = new, trial, new_mean, new_error
                    if done:
                        break
                    continue
        new = ordered.assign(mean)
        if np.array_equal(new, seg):
            break
        filled = _fill(ordered, new, k, split_empty)
        new_mean, new_error = ordered.means(filled)
        omega = OMEGA_GROWTH if filled is new else 1.0    # after a split the clusters are renumbered
        origin = mean if filled is new else new_mean
        done = error - new_error <= tol * new_error
        seg, mean, error = filled, new_mean, new_error
        if done:
            break
    return seg, iterations


def kmeans_1d(values: torch.Tensor, k: int, init: str = "linear", max_iter: int = MAX_ITER, tol: float = TOL,
              seed: int = 0, split_empty: bool = True) -> KMeansResult:
    """Cluster 1-D `values` into at most k clusters. Fewer distinct values than k: each is its own centroid.

    Lloyd steps until the assignment stops changing, the squared error falls by less than `tol` of itself
    in a step, or `max_iter` steps. With `split_empty` (the default) an empty cluster is refilled by
    splitting the cluster with the largest error, so k distinct values or more give exactly k clusters;
    without it empty clusters are dropped (Deep Compression's plain Lloyd).
    """
    flat = values.detach().reshape(-1).cpu()
    if flat.numel() == 0:
        return KMeansResult(flat.new_zeros(0), torch.zeros(0, dtype=torch.long), 0)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    data = flat.float().numpy()
    if not bool(np.isfinite(data).all()):
        raise ValueError("k-means needs finite values: the weights hold NaN or infinity")
    ordered = _Sorted(np.sort(data))
    n, iterations = data.size, 0
    if int(np.count_nonzero(ordered.values[1:] != ordered.values[:-1])) + 1 <= k:
        seg = np.unique(np.concatenate([[0], np.flatnonzero(ordered.values[1:] != ordered.values[:-1]) + 1, [n]]))
    else:
        gen = torch.Generator().manual_seed(seed)
        start = initial_centroids(torch.from_numpy(ordered.values), k, init, gen).numpy()
        seg, iterations = _lloyd(ordered, ordered.assign(start), k, max_iter, tol, split_empty)
    centroids, _ = ordered.means(seg)
    firsts = ordered.values[seg[1:-1]]              # clusters never split equal values: label by value
    labels = np.searchsorted(firsts, data, side="right")
    return KMeansResult(torch.from_numpy(centroids).to(flat.dtype), torch.from_numpy(labels.astype(np.int64)), iterations)
