"""Fast 1-D k-means for weight sharing (Deep Compression, Han et al. 2016).

In one dimension every cluster is an interval of the sorted values, so after one sort each Lloyd
step is: boundaries = midpoints between neighbouring centroids, `searchsorted` of the boundaries
into the sorted values, and cluster sums from a cumulative sum. A step costs O(k log n), not O(n k):
10 million weights into 256 clusters take about a second, most of it the sort.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

INITS = ["linear", "density", "random"]


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


def _segments(sorted_values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Start index in the sorted values of each centroid's interval, plus n at the end (len k + 1).

    numpy's searchsorted: k binary searches are microseconds, while torch's parallel version waits
    for its thread pool on a busy machine.
    """
    mids = ((centroids[1:] + centroids[:-1]) * 0.5).to(sorted_values.dtype).numpy()
    inner = np.searchsorted(sorted_values.numpy(), mids, side="left")
    return torch.from_numpy(np.concatenate([[0], inner, [sorted_values.numel()]]).astype(np.int64))


def _relocate_empty(centroids: torch.Tensor, counts: torch.Tensor, sums: torch.Tensor,
                    squares: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Move empty clusters' centroids into the clusters with the largest squared error (splitting them)."""
    empty = counts == 0
    mean = sums / counts.clamp(min=1)
    sse = torch.where(empty, -1.0, squares - sums * mean)
    n_split = min(int(empty.sum()), int((sse > 0).sum()))
    if n_split == 0:
        return centroids, False
    worst = torch.topk(sse, n_split).indices
    spread = 0.5 * (sse[worst] / counts[worst]).sqrt()
    moved = centroids.clone()
    moved[empty.nonzero().squeeze(1)[:n_split]] = mean[worst] + spread
    moved[worst] = mean[worst] - spread
    return moved.sort().values, True


def kmeans_1d(values: torch.Tensor, k: int, init: str = "linear", max_iter: int = 100, tol: float = 1e-6,
              seed: int = 0, split_empty: bool = False) -> KMeansResult:
    """Cluster 1-D `values` into at most k clusters. Fewer distinct values than k: each is its own centroid.

    Lloyd steps until the squared centroid shift falls below `tol` x the variance of the values (the
    criterion sklearn uses). Empty clusters are dropped at the end (Deep Compression's plain Lloyd:
    fewer distinct values, so shorter Huffman codes), or with `split_empty` moved into the cluster with
    the largest error, as sklearn does (every cluster used: lower error, higher index entropy).
    """
    flat = values.detach().reshape(-1).cpu()
    if flat.numel() == 0:
        return KMeansResult(flat.new_zeros(0), torch.zeros(0, dtype=torch.long), 0)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    sorted_values, order = flat.float().sort()
    if int((sorted_values[1:] != sorted_values[:-1]).sum()) + 1 <= k:
        centroids = torch.unique_consecutive(sorted_values).double()
        iterations = 0
    else:
        gen = torch.Generator().manual_seed(seed)
        centroids = torch.unique(initial_centroids(sorted_values, k, init, gen))
        zero = sorted_values.new_zeros(1, dtype=torch.float64)
        csum = torch.cat([zero, sorted_values.cumsum(0, dtype=torch.float64)])
        csq: torch.Tensor | None = None        # cumulative squares, only once a cluster runs empty
        n = sorted_values.numel()
        spread = float(sorted_values[::max(1, n // 65536)].double().var())   # an even sample of the sorted values
        threshold = tol * max(spread, 1e-300)
        iterations = 0
        for iterations in range(1, max_iter + 1):
            seg = _segments(sorted_values, centroids)
            counts = seg[1:] - seg[:-1]
            sums = csum[seg[1:]] - csum[seg[:-1]]
            new = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
            shift = float(((new - centroids) ** 2).sum())
            moved = False
            if split_empty and iterations <= max_iter // 2 and bool((counts == 0).any()):  # later: plain Lloyd, so it settles
                if csq is None:
                    csq = torch.cat([zero, (sorted_values * sorted_values).cumsum(0, dtype=torch.float64)])
                new, moved = _relocate_empty(new, counts, sums, csq[seg[1:]] - csq[seg[:-1]])
            centroids = new
            if shift <= threshold and not moved:
                break
    seg = _segments(sorted_values, centroids)
    counts = seg[1:] - seg[:-1]
    keep = counts > 0
    centroids, counts = centroids[keep], counts[keep]
    sorted_labels = torch.repeat_interleave(torch.arange(centroids.numel()), counts)
    labels = torch.empty_like(sorted_labels)
    labels[order] = sorted_labels
    return KMeansResult(centroids.to(flat.dtype), labels, iterations)
