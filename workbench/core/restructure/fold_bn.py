"""Batch-norm folding: a convolution followed only by a BatchNorm2d absorbs it (w' = w g / s, b' = (b - m) g / s + beta).

Pairs are found on the traced graph (torch.fx): the convolution's output must feed the batch norm and
nothing else. The folded convolution gains a bias and the batch norm becomes an identity, so the
model computes the same function in eval mode with one layer less per pair.
"""
from __future__ import annotations

from typing import Any, cast

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .. import transforms
from ..errors import BadInput
from .conv import like

OP = "fold_bn"


def find_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, bn name) for each convolution whose only user is a batch norm."""
    import torch.fx
    try:
        with transforms.TRACE_LOCK:     # traced in this thread only, one trace at a time (see OwnThreadTracer)
            graph = type("OwnThreadTracer", (transforms.OwnThreadTracer, torch.fx.Tracer), {})().trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means we cannot tell the pairs apart
        raise BadInput(f"the model cannot be traced to find convolution + batch-norm pairs "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, torch.fx.Node) and src.op == "call_module" and isinstance(modules.get(src.target), nn.Conv2d)
                and len(src.users) == 1):
            pairs.append((str(src.target), str(node.target)))
    return pairs


def shell(conv: nn.Conv2d) -> nn.Conv2d:
    return like(conv, conv.in_channels, conv.out_channels, groups=conv.groups, bias=True)


def fold(model: nn.Module, pairs: list[tuple[str, str]]) -> None:
    """Fold each pair in place (the model is put in eval mode: folding uses the running statistics)."""
    model.eval()
    for conv_name, bn_name in pairs:       # from `find_pairs`: a Conv2d and the BatchNorm2d it feeds
        fused = fuse_conv_bn_eval(cast(nn.Conv2d, model.get_submodule(conv_name)),
                                  cast(nn.BatchNorm2d, model.get_submodule(bn_name)))
        fused.weight.requires_grad_(True)
        if fused.bias is not None:
            fused.bias.requires_grad_(True)
        model.set_submodule(conv_name, fused)
        model.set_submodule(bn_name, nn.Identity())


def _replay(model: nn.Module, t: dict[str, Any]) -> nn.Module:
    for conv_name, bn_name in t["pairs"]:   # the record names the convolutions that were folded
        model.set_submodule(conv_name, shell(cast(nn.Conv2d, model.get_submodule(conv_name))))
        model.set_submodule(bn_name, nn.Identity())
    return model


transforms.register(OP)(_replay)
