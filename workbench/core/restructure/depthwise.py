"""Depthwise separable replacement of a k x k convolution (MobileNet): depthwise k x k, then pointwise 1x1.

Cost per output position falls from in * out * k^2 to in * k^2 + in * out multiply-adds: a ratio of
1/out + 1/k^2. The new pair is initialised as the best separable approximation of the old filters: for
each input channel c, the out x k^2 slice W[:, c] is replaced by its rank-1 SVD term u s v^T, the
depthwise filter of channel c taking sqrt(s) v and the pointwise column c taking sqrt(s) u. It is exact
when every input channel's filters are multiples of one k x k pattern; otherwise fine-tuning or
distillation recovers the accuracy.
"""
from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from .. import transforms
from .conv import like

OP = "depthwise"


def eligible(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.groups == 1 and module.in_channels > 1
            and module.kernel_size[0] * module.kernel_size[1] > 1)


def cost_ratio(module: nn.Conv2d) -> float:
    k2 = module.kernel_size[0] * module.kernel_size[1]
    return 1.0 / module.out_channels + 1.0 / k2


def shell(module: nn.Conv2d) -> nn.Sequential:
    depth = like(module, module.in_channels, module.in_channels, groups=module.in_channels, bias=False)
    return nn.Sequential(depth, nn.Conv2d(module.in_channels, module.out_channels, 1, bias=module.bias is not None))


def separate(module: nn.Conv2d) -> tuple[nn.Sequential, float]:
    """The depthwise separable pair and the relative Frobenius error of the approximated filters."""
    w = module.weight.detach().float()                      # out, in, kh, kw
    out, cin, kh, kw = w.shape
    slices = w.permute(1, 0, 2, 3).reshape(cin, out, kh * kw)   # per input channel: out x k^2
    u, s, vh = torch.linalg.svd(slices, full_matrices=False)
    root = s[:, 0].sqrt()
    depth_w = (root[:, None] * vh[:, 0, :]).reshape(cin, 1, kh, kw)
    point_w = (u[:, :, 0] * root[:, None]).t().reshape(out, cin, 1, 1)
    pair = shell(module).to(module.weight.device)
    depth, point = cast(nn.Conv2d, pair[0]), cast(nn.Conv2d, pair[1])
    with torch.no_grad():
        depth.weight.copy_(depth_w)
        point.weight.copy_(point_w)
        if module.bias is not None and point.bias is not None:
            point.bias.copy_(module.bias)
    approx = torch.einsum("oc,ck->ock", point_w.reshape(out, cin), depth_w.reshape(cin, kh * kw))
    error = float((approx - w.reshape(out, cin, kh * kw)).norm() / w.norm().clamp_min(1e-30))
    return pair, error


def _replay(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    for name in t["layers"]:                # the record names the convolutions that were separated
        model.set_submodule(name, shell(cast(nn.Conv2d, model.get_submodule(name))))
    return model


transforms.register(OP)(_replay)
