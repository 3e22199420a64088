"""1-D k-means and weight sharing: cluster counts, zeros, initialisations, Lloyd optimality."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.quantization.kmeans import INITS, MAX_ITER, initial_centroids, kmeans_1d
from workbench.core.quantization.sharing import share_layer


def test_fixed_point_of_lloyd():
    x = torch.randn(20000, generator=torch.Generator().manual_seed(1))
    r = kmeans_1d(x, 16, "linear", max_iter=5000, tol=0.0)
    assert r.centroids.numel() <= 16
    assert torch.all(r.centroids[1:] > r.centroids[:-1])
    # every value sits with its nearest centroid, every centroid is the mean of its values
    nearest = (x[:, None] - r.centroids[None, :]).abs().argmin(1)
    assert (nearest == r.labels).float().mean() > 0.999
    means = torch.zeros(r.centroids.numel(), dtype=torch.float64).index_add_(0, r.labels, x.double())
    means /= torch.bincount(r.labels, minlength=r.centroids.numel()).double()
    assert torch.allclose(means.float(), r.centroids, atol=1e-5)


def test_fewer_distinct_values_than_clusters():
    x = torch.tensor([0.5, -1.0, 0.5, 2.0, -1.0])
    r = kmeans_1d(x, 256)
    assert r.centroids.tolist() == [-1.0, 0.5, 2.0]
    assert torch.equal(r.centroids[r.labels], x)
    assert kmeans_1d(torch.zeros(0), 4).centroids.numel() == 0
    single = kmeans_1d(torch.full((7,), 3.0), 2)
    assert single.centroids.tolist() == [3.0] and torch.equal(single.labels, torch.zeros(7, dtype=torch.long))


def test_initialisations_behave_as_described():
    values = torch.distributions.Laplace(0.0, 1.0).sample((50000,)).sort().values
    k = 8
    lin = initial_centroids(values, k, "linear")
    assert torch.allclose(lin, torch.linspace(float(values[0]), float(values[-1]), k, dtype=torch.float64))
    dens = initial_centroids(values, k, "density")
    below = torch.searchsorted(values.double(), dens).double() / values.numel()
    assert torch.allclose(below, (torch.arange(k) + 0.5).double() / k, atol=1e-3)  # evenly spaced in the CDF
    gen = torch.Generator().manual_seed(0)
    rnd = initial_centroids(values, k, "random", gen)
    assert torch.isin(rnd.float(), values).all()                                    # picked from the weights
    assert not torch.equal(rnd, initial_centroids(values, k, "random", torch.Generator().manual_seed(1)))
    # linear keeps the rare large weights (Han et al.): smaller error on the largest 1% than density
    top = values.abs() > values.abs().quantile(0.99)
    err = {init: (values - (r := kmeans_1d(values, k, init, max_iter=3)).centroids[r.labels]).abs()[top].mean()
           for init in ("linear", "density")}
    assert err["linear"] < err["density"]
    with pytest.raises(ValueError):
        initial_centroids(values, k, "kmeans++")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 400), bits=st.integers(1, 8), zero_frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_shared_layer_has_at_most_2_to_bits_values_and_keeps_zeros(n, bits, zero_frac, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 3, generator=g)
    w[torch.rand(n, 3, generator=g) < zero_frac] = 0.0
    keep = w != 0
    layer = share_layer("w", w, keep, bits, "linear", seed)
    shared = layer.weight()
    # a kept weight becomes 0 only when 0 is one of the centroids (implication: False <= anything)
    assert bool((shared[keep] == 0).any()) <= bool((layer.codebook == 0).any())
    assert (shared[~keep] == 0).all()
    distinct = shared[keep].unique()
    assert distinct.numel() <= 2 ** bits
    assert torch.isin(distinct, layer.codebook).all()


def test_a_million_weights_cluster_finely():
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    r = kmeans_1d(x, 256)
    assert r.centroids.numel() <= 256 and r.labels.shape == x.shape
    mse = float(((x - r.centroids[r.labels]) ** 2).mean())
    assert mse < 1e-3   # 256 levels over a unit Gaussian: about range^2 / (12 * 256^2)


def test_empty_clusters_split_by_default_or_dropped():
    x = _laplace(50000, 0)
    plain = kmeans_1d(x, 64, "linear", split_empty=False)      # tails leave linear-init clusters empty
    split = kmeans_1d(x, 64, "linear")
    assert plain.centroids.numel() < 64 == split.centroids.numel()
    assert torch.bincount(split.labels, minlength=64).min() > 0
    assert _mse(x, split) < _mse(x, plain)


def _laplace(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).laplace(0.0, 1.0, n).astype(np.float32))


def _mse(x: torch.Tensor, r) -> float:
    return float(((x.double() - r.centroids.double()[r.labels]) ** 2).mean())


@settings(max_examples=40, deadline=None)
@given(distinct=st.integers(1, 400), n=st.integers(1, 3000), k=st.integers(1, 64), tail=st.floats(0.5, 4.0),
       init=st.sampled_from(INITS), seed=st.integers(0, 2**16))
def test_no_cluster_is_ever_empty_with_duplicates_and_heavy_tails(distinct, n, k, tail, init, seed):
    rng = np.random.default_rng(seed)
    support = np.sort(rng.standard_t(tail, distinct)).astype(np.float32) * 10 ** rng.uniform(-3, 3)
    weights = rng.zipf(1.5, distinct).astype(np.float64)            # a few values repeated very often
    x = torch.from_numpy(rng.choice(support, n, p=weights / weights.sum()))
    r = kmeans_1d(x, k, init, seed=seed)
    expected = min(k, int(x.unique().numel()))
    assert r.centroids.numel() == expected
    assert torch.bincount(r.labels, minlength=expected).min() > 0      # every centroid owns values
    assert torch.all(r.centroids[1:] > r.centroids[:-1])
    bits = max(1, (k - 1).bit_length())
    layer = share_layer("w", x.reshape(-1, 1), torch.ones(n, 1, dtype=torch.bool), bits, init)
    assert layer.codebook.numel() == min(2 ** bits, int(x.unique().numel()))


@pytest.mark.parametrize("init", INITS)
def test_error_never_rises_from_step_to_step(init):
    x = _laplace(20000, 3)
    errors = [_mse(x, kmeans_1d(x, 32, init, max_iter=steps, seed=1)) for steps in range(1, 45)]
    assert all(b <= a * (1 + 1e-7) for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0]


def reference_lloyd(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Textbook Lloyd, O(n k) per step, until the assignment stops changing."""
    labels = None
    while True:
        new = np.abs(x[:, None] - centroids[None, :]).argmin(1)
        if labels is not None and np.array_equal(new, labels):
            return centroids, labels
        labels = new
        counts = np.bincount(labels, minlength=centroids.size)
        assert counts.min() > 0
        centroids = np.bincount(labels, weights=x, minlength=centroids.size) / counts


def _normal_quantiles(n: int) -> torch.Tensor:
    """A smooth, log-concave sample: the standard normal's n quantiles."""
    q = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return (2 ** 0.5 * torch.erfinv(2 * q - 1)).float()


@pytest.mark.parametrize("n,k", [(3000, 6), (5000, 10), (20000, 16)])
def test_converges_to_the_reference_lloyd_fixed_point(n, k):
    x = _normal_quantiles(n)
    want_centroids, want_labels = reference_lloyd(x.double().numpy(), initial_centroids(x, k, "linear").numpy())
    shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(k))
    got = kmeans_1d(x[shuffle], k, "linear")
    assert got.iterations < MAX_ITER
    # a finite sample has a plateau of fixed points a few value spacings wide (0.005-0.02 here): the
    # textbook run stops at one edge of it, ours at least as low in error
    assert np.allclose(got.centroids.double().numpy(), want_centroids, rtol=0, atol=0.01)
    assert (got.labels.numpy() == want_labels[shuffle.numpy()]).mean() > 0.99
    reference = float(((x.double().numpy() - want_centroids[want_labels]) ** 2).mean())
    assert reference * (1 - 1e-3) <= _mse(x[shuffle], got) <= reference * (1 + 1e-9)


@pytest.mark.parametrize("levels", [[0.4528, 1.5104], [0.2451, 0.7560, 1.3439, 2.1519]])
def test_reaches_the_lloyd_max_quantizer_of_the_normal_distribution(levels):
    """Max (1960), table of optimum quantizer levels for a unit normal: 4 and 8 levels."""
    got = kmeans_1d(_normal_quantiles(200_000), 2 * len(levels), "linear")
    want = torch.tensor([-v for v in reversed(levels)] + levels)
    assert torch.allclose(got.centroids, want, atol=2e-4)


@pytest.mark.parametrize("seed", range(4))
def test_random_samples_reach_a_lloyd_fixed_point_as_good_as_the_reference(seed):
    x = torch.from_numpy(np.random.default_rng(seed).normal(0.0, 1.0, 4000).astype(np.float32))
    start = initial_centroids(x.sort().values, 8, "linear").numpy()
    want_centroids, want_labels = reference_lloyd(x.double().numpy(), start)
    got = kmeans_1d(x, 8, "linear", tol=0.0)
    nearest = (x[:, None] - got.centroids[None, :]).abs().argmin(1)
    assert (nearest == got.labels).float().mean() > 0.999             # each value with its nearest centroid
    means = torch.zeros(8, dtype=torch.float64).index_add_(0, got.labels, x.double()) / torch.bincount(got.labels)
    assert torch.allclose(means.float(), got.centroids, atol=1e-6)    # each centroid the mean of its values
    reference = float(((x.double().numpy() - want_centroids[want_labels]) ** 2).mean())
    assert _mse(x, got) <= reference * 1.001                          # samples can have several fixed points


def test_iterates_to_convergence_past_the_old_cap():
    x = _laplace(200_000, 4)
    capped = kmeans_1d(x, 32, "linear", max_iter=100, split_empty=False)
    converged = kmeans_1d(x, 32, "linear")
    assert converged.iterations < MAX_ITER
    # converged: a plain Lloyd step changes nothing (each value is with its nearest centroid)
    nearest = (x[:, None] - converged.centroids[None, :]).abs().argmin(1)
    assert (nearest == converged.labels).float().mean() > 0.9999
    assert _mse(x, converged) < _mse(x, capped)
    with pytest.raises(ValueError, match="finite"):
        kmeans_1d(torch.tensor([1.0, float("nan"), 2.0]), 2)
