"""`extend`: a `tv_pruners.Adaptation` plus what the timm layers of a model need."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from . import heads as _heads
from .patches import PATCHED, Forward, _checked
from .specs import KEPT, KEPT_OUTPUTS, OPAQUE, PRESERVING, Spec, _as_mixed, _is_mixed_depthwise, _mixed_depthwise, _name
from .standins import KeptOp, KeptPruner, Marker, OpaqueOp, OpaquePruner, PreservingOp, PreservingPruner, _NeverInAModel

if TYPE_CHECKING:
    from ..tv_pruners import Adapter


def _kept(model: nn.Module) -> list[nn.Module]:
    """Modules whose channels cannot be removed one at a time:

    * convolutions with groups == in_channels but more outputs than inputs (one input, several outputs per
      group: FastViT's stem and patch embeddings), which torch-pruning's importance and pruning functions
      treat as ordinary convolutions (IndexError);
    * MixNet's MixedConv2d when not depthwise (1x1 convolutions over fixed splits): removing all channels of
      a split would leave a convolution with no inputs or outputs, which PyTorch does not run.
    """
    out: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels and m.out_channels != m.in_channels:
            out.append(m)
        elif _name(type(m)) == "timm.layers.mixed_conv2d.MixedConv2d" and len(_as_mixed(m)) > 1 and not _is_mixed_depthwise(m):
            out.append(m)
        elif _name(type(m)) in KEPT:
            out.append(m)
    return out


@dataclass
class TimmAdaptation:
    """The model's `tv_pruners.Adaptation` (`base`) plus, while torch-pruning traces, timm modules swapped for
    stand-ins and forwards rewritten. The same three methods as `base`, which `structured` calls."""
    base: Adapter
    pruners: dict[type[nn.Module], Any] = field(default_factory=dict)     # type -> torch_pruning BasePruningFunc
    ignored: list[nn.Module] = field(default_factory=list)
    # (parent, attribute, original module or None for an added one, stand-in)
    swaps: list[tuple[nn.Module, str, nn.Module | None, nn.Module]] = field(default_factory=list)
    forwards: list[tuple[nn.Module, Forward]] = field(default_factory=list)
    attention_heads: dict[nn.Module, int] = field(default_factory=dict)   # qkv -> heads (torch-pruning removes heads)

    def heads(self) -> dict[nn.Module, int]:
        return {**self.base.heads(), **self.attention_heads}

    def kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.base.kwargs())
        pruners = {**kwargs.get("customized_pruners", {}), **self.pruners}
        if KeptOp in pruners:
            pruners[_NeverInAModel] = Marker(pruners[KeptOp])
        if pruners:
            kwargs["customized_pruners"] = pruners
        return kwargs

    def ignore(self, ignored: Sequence[nn.Module]) -> list[nn.Module]:
        return [*self.base.ignore(ignored), *self.ignored]

    @contextlib.contextmanager
    def tracing(self) -> Iterator[None]:
        done: list[tuple[nn.Module, str, nn.Module | None]] = []
        try:
            for parent, attr, original, standin in self.swaps:
                parent._modules[attr] = standin
                done.append((parent, attr, original))
            for module, forward in self.forwards:
                module.forward = _checked(module, forward)
            with self.base.tracing():
                yield
        finally:
            for module, _ in self.forwards:
                module.__dict__.pop("forward", None)
            for parent, attr, original in reversed(done):
                if original is None:
                    del parent._modules[attr]
                else:
                    parent._modules[attr] = original


def specs(model: nn.Module) -> tuple[dict[nn.Module, Spec], dict[nn.Module, Spec], list[nn.Module]]:
    """The model's modules that need a stand-in: (opaque, channel-preserving, kept whole), outermost only."""
    opaque: dict[nn.Module, Spec] = {}
    preserving: dict[nn.Module, Spec] = {}
    for m in model.modules():
        name = _name(type(m))
        if name in OPAQUE and not _heads.prunable(m):
            opaque[m] = OPAQUE[name](m)
        elif name in PRESERVING:
            preserving[m] = PRESERVING[name](m)
        elif name == "timm.layers.mixed_conv2d.MixedConv2d" and len(_as_mixed(m)) > 1 and _is_mixed_depthwise(m):
            preserving[m] = _mixed_depthwise(m)
    for m in list(model.modules()):
        name = _name(type(m))
        found = KEPT_OUTPUTS[name](m) if name in KEPT_OUTPUTS else None
        if found is not None:
            opaque[found[0]] = found[1]
    kept = _kept(model)
    inside = {id(sub) for m in (*opaque, *preserving) for sub in m.modules() if sub is not m}
    return ({m: s for m, s in opaque.items() if id(m) not in inside},
            {m: s for m, s in preserving.items() if id(m) not in inside},
            [m for m in kept if id(m) not in inside])


def extend(model: nn.Module, a: Adapter) -> Adapter:
    """`a` (the `tv_pruners.Adaptation` from `tv_pruners.adapt`) with what the timm layers of `model` need;
    `a` itself for a model without timm layers."""
    if not any(type(m).__module__.startswith("timm.") for m in model.modules()):
        return a
    out = TimmAdaptation(a)
    opaque, preserving, kept = specs(model)
    out.attention_heads = _heads.heads(model.modules())
    parents: dict[int, list[tuple[nn.Module, str]]] = {}   # a module shared by several blocks has several
    for parent in model.modules():
        for name, child in parent._modules.items():
            if child is not None:
                parents.setdefault(id(child), []).append((parent, name))
    for m, spec in [*opaque.items(), *preserving.items()]:
        standin: nn.Module = (OpaqueOp if m in opaque else PreservingOp)(m, spec)
        out.pruners.setdefault(type(standin), OpaquePruner() if m in opaque else PreservingPruner())
        out.swaps.extend((parent, name, m, standin) for parent, name in parents[id(m)])
        if spec.frozen:
            out.ignored.append(standin)
    for m in model.modules():
        found = PATCHED.get(_name(type(m)))
        if found is None:
            continue
        forward, patch = found
        added = patch(m)
        if added:
            for attr, standin in added.items():
                out.pruners.setdefault(KeptOp, KeptPruner())
                out.ignored.append(standin)
                out.swaps.append((m, attr, None, standin))
            out.forwards.append((m, forward))
    for m in kept:
        standin = KeptOp(m)
        out.pruners.setdefault(KeptOp, KeptPruner())
        out.ignored.append(standin)
        out.swaps.extend((parent, name, m, standin) for parent, name in parents[id(m)])
    return out
