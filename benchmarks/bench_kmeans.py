"""(c) 1-D k-means for weight sharing: workbench's sorted/vectorised Lloyd against sklearn.cluster.KMeans.

Same 1M weights (Laplace-distributed, like trained weights), 256 clusters, the same linear
initialisation, Lloyd iterations until the centroids stop moving; empty clusters split the worst one,
as sklearn does (also shown: dropped, the quantize stage's default). Also 10M weights (ours only).
scikit-learn is needed for this benchmark only (`make bench` installs it): not a project dependency.

    python benchmarks/bench_kmeans.py [--n 1000000] [--k 256]
"""
from __future__ import annotations

import argparse
import time

from prune_bench_common import ROOT, table, write_result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=256)
    args = ap.parse_args()
    import numpy as np
    import torch

    from workbench.core.quantization.kmeans import initial_centroids, kmeans_1d

    weights = torch.distributions.Laplace(0.0, 0.05).sample((10 * args.n,), ).float()
    rows = []

    def ours(values: torch.Tensor, split_empty: bool = True) -> dict:
        t0 = time.perf_counter()
        r = kmeans_1d(values, args.k, "linear", max_iter=300, split_empty=split_empty)
        seconds = time.perf_counter() - t0
        mse = float(((values - r.centroids[r.labels]) ** 2).mean())
        return {"seconds": seconds, "iterations": r.iterations, "mse": mse, "clusters": int(r.centroids.numel())}

    one_m = weights[: args.n]
    rows.append({"method": "workbench kmeans_1d", "n": args.n, **ours(one_m)})
    rows.append({"method": "workbench kmeans_1d, empty clusters dropped", "n": args.n, **ours(one_m, False)})
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        print("scikit-learn is not installed: pip install scikit-learn (benchmark only)")
        return 1
    init = initial_centroids(one_m.sort().values, args.k, "linear").numpy().reshape(-1, 1)
    x = one_m.numpy().astype(np.float64).reshape(-1, 1)
    t0 = time.perf_counter()
    km = KMeans(args.k, init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)
    seconds = time.perf_counter() - t0
    rows.append({"method": "sklearn KMeans (lloyd)", "n": args.n, "seconds": seconds, "iterations": int(km.n_iter_),
                 "mse": float(km.inertia_) / args.n, "clusters": int(len(np.unique(km.labels_)))})
    rows.append({"method": "workbench kmeans_1d", "n": 10 * args.n, **ours(weights)})
    rows[2]["ratio"] = rows[2]["seconds"] / rows[0]["seconds"]
    print(f"1-D k-means, {args.k} clusters, linear initialisation, {torch.get_num_threads()} torch threads\n")
    print(table(rows, [("method", "method", ""), ("n", "weights", ","), ("seconds", "seconds", ".3f"),
                       ("ratio", "x slower than ours", ".0f"), ("iterations", "iterations", ""),
                       ("clusters", "clusters used", ""), ("mse", "mean squared error", ".3e")]))
    path = write_result("kmeans", {"k": args.k, "rows": rows})
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
