"""A new 2-D convolution shaped like an existing one (what `shell` builds in each method here)."""
from __future__ import annotations

from torch import nn


def _pair(v: tuple[int, ...]) -> tuple[int, int]:
    return v[0], v[1]          # a Conv2d keeps kernel_size, stride, padding and dilation as pairs


def like(conv: nn.Conv2d, in_channels: int, out_channels: int, *, groups: int = 1, bias: bool) -> nn.Conv2d:
    """An untrained convolution with `conv`'s kernel size, stride, padding, dilation and padding mode."""
    padding = conv.padding if isinstance(conv.padding, str) else _pair(conv.padding)
    return nn.Conv2d(in_channels, out_channels, _pair(conv.kernel_size), _pair(conv.stride), padding, _pair(conv.dilation),
                     groups, bias=bias, padding_mode=conv.padding_mode)
