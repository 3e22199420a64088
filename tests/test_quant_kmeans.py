"""1-D k-means and weight sharing: cluster counts, zeros, initialisations, Lloyd optimality."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.quantization.kmeans import initial_centroids, kmeans_1d
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


def test_empty_clusters_dropped_or_split():
    x = torch.distributions.Laplace(0.0, 1.0).sample((50000,))
    plain = kmeans_1d(x, 64, "linear")                       # tails leave linear-init clusters empty
    split = kmeans_1d(x, 64, "linear", split_empty=True)
    assert plain.centroids.numel() < 64 == split.centroids.numel()
    err = {name: float(((x - r.centroids[r.labels]) ** 2).mean()) for name, r in (("plain", plain), ("split", split))}
    assert err["split"] < err["plain"]
