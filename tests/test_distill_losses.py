"""Distillation losses against hand computations and their defining invariances."""
import math

import torch
from torch import nn

from workbench.core.distill import losses as L


def test_soft_targets_follow_the_temperature_formula():
    z = torch.tensor([[1.0, 2.0, 4.0]])
    for T in (1.0, 4.0, 20.0):
        e = [math.exp(v / T) for v in (1.0, 2.0, 4.0)]
        expected = torch.tensor([[v / sum(e) for v in e]])
        assert torch.allclose(L.soft_targets(z, T), expected, atol=1e-6)
    # higher temperature: softer (higher entropy) distribution
    h = [-(p * p.log()).sum() for p in (L.soft_targets(z, T) for T in (1.0, 4.0, 20.0))]
    assert h[0] < h[1] < h[2]


def test_kd_loss_is_t_squared_kl_and_zero_when_student_matches():
    torch.manual_seed(0)
    t, s = torch.randn(8, 10), torch.randn(8, 10)
    T = 3.0
    p, q = L.soft_targets(t, T), L.soft_targets(s, T)
    expected = (p * (p.log() - q.log())).sum(1).mean() * T * T
    assert torch.allclose(L.kd_loss(s, p, T), expected, atol=1e-5)
    assert L.kd_loss(t, p, T).abs() < 1e-6
    # the T^2 factor keeps gradient magnitudes comparable across temperatures (Hinton et al.)
    grads = []
    for T in (2.0, 8.0):
        x = s.clone().requires_grad_(True)
        L.kd_loss(x, L.soft_targets(t, T), T).backward()
        grads.append(x.grad.norm())
    assert 0.2 < float(grads[1] / grads[0]) < 5.0


def test_fitnet_adapters_and_loss():
    s4, t4 = torch.randn(2, 8, 16, 16), torch.randn(2, 32, 8, 8)
    conv = L.make_adapter(s4, t4)
    assert isinstance(conv, nn.Conv2d) and (conv.in_channels, conv.out_channels, conv.kernel_size) == (8, 32, (1, 1))
    assert L.fitnet_loss(s4, t4, conv).ndim == 0            # spatial sizes reconciled by pooling
    s2, t2 = torch.randn(4, 30), torch.randn(4, 64, 4, 4)    # an MLP student against a CNN teacher
    lin = L.make_adapter(s2, t2)
    assert isinstance(lin, nn.Linear) and (lin.in_features, lin.out_features) == (30, 64)
    # an adapter that reproduces the teacher exactly gives zero loss
    same = nn.Linear(30, 30, bias=False)
    nn.init.eye_(same.weight)
    assert L.fitnet_loss(s2, s2, same) < 1e-10


def test_attention_maps_are_normalised_and_scale_free():
    f = torch.rand(3, 16, 8, 8)
    a = L.attention_map(f)
    assert a.shape == (3, 64) and torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)
    # expected map: channel mean of squares, normalised
    q = f.pow(2).mean(1).flatten(1)
    assert torch.allclose(a, q / q.norm(dim=1, keepdim=True), atol=1e-6)
    # channel count and overall scale do not matter, spatial size is reconciled
    assert L.attention_loss(5 * f[:, :4], f[:, :4]) < 1e-8
    assert L.attention_loss(torch.rand(3, 4, 16, 16), f) > 0


def test_relational_losses_ignore_scale_and_width():
    torch.manual_seed(0)
    e = torch.randn(6, 12)
    assert L.rkd_loss(3.0 * e, e) < 1e-6                     # distances normalised by their mean, angles scale-free
    rot, _ = torch.linalg.qr(torch.randn(12, 12))
    assert L.rkd_loss(e @ rot, e) < 1e-4                     # relations survive a rotation of the embedding
    assert L.rkd_loss(torch.randn(6, 12), e) > 0.01
    # SP: batch similarity matrices; a wider student with the same Gram matrix up to scale costs nothing
    wide = torch.cat([e, torch.zeros(6, 20)], dim=1)
    assert L.sp_loss(2.0 * wide, e) < 1e-8
    assert L.sp_loss(torch.randn(6, 32), e) > 0
    # RKD distance term by hand on three points of a right triangle
    pts = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    d = L._pairwise_distances(pts)
    assert torch.allclose(d, torch.tensor([[0, 3, 4], [3, 0, 5], [4, 5, 0.0]]), atol=1e-4)
