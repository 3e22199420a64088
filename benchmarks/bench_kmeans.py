"""(c) 1-D k-means for weight sharing: workbench's sorted/vectorised Lloyd against sklearn.cluster.KMeans.

Laplace-distributed weights (like trained weights), the same linear initialisation everywhere. Ours runs
as the quantize stage does (to convergence, empty clusters split); sklearn's Lloyd with its defaults
(tol 1e-4, at most 300 iterations); "before" is the previous `kmeans_1d` (taken from git at `OLD`) as the
quantize stage called it (100 steps at most, empty clusters dropped). 1M weights into 256 clusters:
the three timed alternately in this process, median of `--repeats` rounds with the spread (min-max) and
the per-round speed ratio. 10M weights (ours and before, alternately): 32 and 256 clusters.
scikit-learn is needed for this benchmark only (`make bench` installs it): not a project dependency.

    python benchmarks/bench_kmeans.py [--n 1000000] [--k 256] [--repeats 3]
"""
from __future__ import annotations

import argparse

from alternating import alternate, ratios, spread
from git_baseline import import_from_git
from prune_bench_common import ROOT, table, write_result

OLD = "42f009e"           # the last commit with the 100-step, empties-dropped k-means


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old", default=OLD)
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
    before = import_from_git(args.old, "workbench/core/quantization", ["kmeans"], "kmeans_v1")["kmeans"]
    weights = torch.from_numpy(np.random.default_rng(0).laplace(0.0, 0.05, 10 * args.n).astype(np.float32))
    one_m = weights[: args.n]
    init = initial_centroids(one_m.sort().values, args.k, "linear").numpy().reshape(-1, 1)
    x = one_m.numpy().astype(np.float64).reshape(-1, 1)
    found: dict = {}
    labels = {"ours": "workbench kmeans_1d (to convergence, empty clusters split)",
              "before": "before: kmeans_1d as the stage called it (100 steps, empty clusters dropped)",
              "sklearn": "sklearn KMeans (lloyd, tol 1e-4)"}

    def ours(values: torch.Tensor, k: int, key: str, **kw) -> None:
        found[key] = kmeans_1d(values, k, "linear", **kw)

    def old(values: torch.Tensor, k: int, key: str) -> None:
        found[key] = before.kmeans_1d(values, k, "linear", max_iter=100)

    def sklearn() -> None:
        found["sklearn"] = KMeans(args.k, init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)

    def row(key: str, values: torch.Tensor, k: int, times: list[float], label: str) -> dict:
        r = found[key]
        if key == "sklearn":
            iterations, used, mse = int(r.n_iter_), int(len(np.unique(r.labels_))), float(r.inertia_) / values.numel()
        else:
            iterations, used = r.iterations, int(r.centroids.numel())
            mse = float(((values.double() - r.centroids.double()[r.labels]) ** 2).mean())
        t = spread(times)
        return {"method": label, "n": values.numel(), "k": k, "time": t, "iterations": iterations, "clusters": used,
                "mse": mse, "seconds": f"{t['median']:.3f} ({t['low']:.3f}-{t['high']:.3f})"}

    small = alternate({"ours": lambda: ours(one_m, args.k, "ours"), "sklearn": sklearn,
                       "before": lambda: old(one_m, args.k, "before")}, args.repeats)
    rows = [row(key, one_m, args.k, small[key], labels[key]) for key in ("ours", "sklearn", "before")]
    for r, key in zip(rows[1:], ("sklearn", "before")):
        q = ratios(small[key], small["ours"])
        r["x"] = f"{q['median']:.1f}x ({q['low']:.1f}-{q['high']:.1f})"
    big = alternate({"before 32": lambda: old(weights, 32, "before 32"), "ours 32": lambda: ours(weights, 32, "ours 32"),
                     "ours 256": lambda: ours(weights, 256, "ours 256")}, args.repeats)
    rows += [row("before 32", weights, 32, big["before 32"], labels["before"]),
             row("ours 32", weights, 32, big["ours 32"], labels["ours"]),
             row("ours 256", weights, 256, big["ours 256"], labels["ours"])]
    rows[3]["above"] = 100 * (rows[3]["mse"] / rows[4]["mse"] - 1)
    rows[2]["above"] = 100 * (rows[2]["mse"] / rows[0]["mse"] - 1)
    rows[1]["above"] = 100 * (rows[1]["mse"] / rows[0]["mse"] - 1)
    threads = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()})
    print(f"1-D k-means, linear initialisation, {args.repeats} alternating rounds; torch threads "
          f"{torch.get_num_threads()}, sklearn thread pools {threads}\n")
    print(table(rows, [("method", "method", ""), ("n", "weights", ","), ("k", "clusters", ""),
                       ("seconds", "seconds, median (min-max)", ""), ("x", "x slower than ours, per round", ""),
                       ("iterations", "iterations", ""), ("clusters", "clusters used", ""),
                       ("mse", "mean squared error", ".3e"), ("above", "MSE % above ours", "+.0f")]))
    path = write_result("kmeans", {"k": args.k, "repeats": args.repeats, "old": args.old, "sklearn_threads": threads,
                                   "rows": rows})
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
