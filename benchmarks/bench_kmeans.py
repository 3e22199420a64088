"""(c) 1-D k-means for weight sharing: workbench's sorted/vectorised Lloyd against sklearn.cluster.KMeans.

Same 1M weights (Laplace-distributed, like trained weights), 256 clusters, the same linear
initialisation. Ours runs as the quantize stage does (to convergence, empty clusters split); sklearn's
Lloyd with its defaults (tol 1e-4, at most 300 iterations). Both timed alternately in this process,
median of `--repeats` rounds with the spread (min-max), and the per-round speed ratio. Then 10M weights
(ours only): 32 clusters against the old 100-step cap, and 256 clusters.
scikit-learn is needed for this benchmark only (`make bench` installs it): not a project dependency.

    python benchmarks/bench_kmeans.py [--n 1000000] [--k 256] [--repeats 3]
"""
from __future__ import annotations

import argparse

from alternating import alternate, ratios, spread
from prune_bench_common import ROOT, table, write_result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import numpy as np
    import torch

    from workbench.core.quantization.kmeans import initial_centroids, kmeans_1d
    try:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_info
    except ImportError:
        print("scikit-learn is not installed: pip install scikit-learn (benchmark only)")
        return 1

    weights = torch.from_numpy(np.random.default_rng(0).laplace(0.0, 0.05, 10 * args.n).astype(np.float32))
    one_m = weights[: args.n]
    init = initial_centroids(one_m.sort().values, args.k, "linear").numpy().reshape(-1, 1)
    x = one_m.numpy().astype(np.float64).reshape(-1, 1)
    found: dict = {}

    def ours(values: torch.Tensor, k: int, key: str, **kw) -> None:
        found[key] = kmeans_1d(values, k, "linear", **kw)

    def sklearn() -> None:
        found["sklearn"] = KMeans(args.k, init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)

    def mse(values: torch.Tensor, key: str) -> float:
        r = found[key]
        return float(((values.double() - r.centroids.double()[r.labels]) ** 2).mean())

    times = alternate({"ours": lambda: ours(one_m, args.k, "ours"), "sklearn": sklearn}, args.repeats)
    ratio = ratios(times["sklearn"], times["ours"])
    km = found["sklearn"]
    rows = [{"method": "workbench kmeans_1d (to convergence, empty clusters split)", "n": args.n, "k": args.k,
             "time": spread(times["ours"]), "iterations": found["ours"].iterations,
             "clusters": int(found["ours"].centroids.numel()), "mse": mse(one_m, "ours"), "ratio": ratio},
            {"method": "sklearn KMeans (lloyd, tol 1e-4)", "n": args.n, "k": args.k, "time": spread(times["sklearn"]),
             "iterations": int(km.n_iter_), "clusters": int(len(np.unique(km.labels_))), "mse": float(km.inertia_) / args.n}]
    plain = alternate({"plain": lambda: ours(one_m, args.k, "plain", split_empty=False)}, 1)
    rows.append({"method": "workbench kmeans_1d, empty clusters dropped", "n": args.n, "k": args.k,
                 "time": spread(plain["plain"]), "iterations": found["plain"].iterations,
                 "clusters": int(found["plain"].centroids.numel()), "mse": mse(one_m, "plain")})
    for k, label, kw in [(32, "workbench kmeans_1d, 100 steps at most (the old cap)", {"max_iter": 100}),
                         (32, "workbench kmeans_1d (to convergence)", {}), (256, "workbench kmeans_1d (to convergence)", {})]:
        t = alternate({"big": lambda k=k, kw=kw: ours(weights, k, "big", **kw)}, 1)["big"]
        rows.append({"method": label, "n": weights.numel(), "k": k, "time": spread(t),
                     "iterations": found["big"].iterations, "clusters": int(found["big"].centroids.numel()),
                     "mse": mse(weights, "big")})
    rows[3]["above"] = 100 * (rows[3]["mse"] / rows[4]["mse"] - 1)
    for r in rows:
        t = r["time"]
        r["seconds"] = f"{t['median']:.3f} ({t['low']:.3f}-{t['high']:.3f})" if t["n"] > 1 else f"{t['median']:.3f}"
        if "ratio" in r:
            r["x"] = f"{r['ratio']['median']:.0f}x ({r['ratio']['low']:.0f}-{r['ratio']['high']:.0f})"
    threads = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()})
    print(f"1-D k-means, linear initialisation, {args.repeats} alternating rounds; torch threads "
          f"{torch.get_num_threads()}, sklearn thread pools {threads}\n")
    print(table(rows, [("method", "method", ""), ("n", "weights", ","), ("k", "clusters", ""),
                       ("seconds", "seconds, median (min-max)", ""), ("x", "sklearn / ours, per round", ""),
                       ("iterations", "iterations", ""), ("clusters", "clusters used", ""),
                       ("mse", "mean squared error", ".4e"), ("above", "% above converged", ".0f")]))
    path = write_result("kmeans", {"k": args.k, "repeats": args.repeats, "sklearn_threads": threads, "rows": rows})
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
