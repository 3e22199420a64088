"""Which layers a quantization method touches, and how many bits each layer gets.

`bits` in a recipe is an int (every layer) or a mapping whose keys are layer types (`conv`, `linear`)
or qualified layer names (`fc1`, `layer1.0.conv1`); a layer's own name wins over its type.
"""
from __future__ import annotations

from torch import nn

from ..errors import BadInput

TYPE_KEYS = {"conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d), "linear": (nn.Linear,)}
WeightLayer = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear    # the types above: what `weight_layers` returns
DEFAULT_BITS = 8


def layer_type(module: nn.Module) -> str | None:
    for key, types in TYPE_KEYS.items():
        if isinstance(module, types):
            return key
    return None


def weight_layers(model: nn.Module, exclude: list[str] | tuple[str, ...] = ()) -> dict[str, WeightLayer]:
    """Conv and Linear layers with a float weight, by qualified name, minus `exclude`."""
    out: dict[str, WeightLayer] = {}
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(m, WeightLayer) and isinstance(w, nn.Parameter) and w.is_floating_point() and name not in exclude:
            out[name] = m
    return out


def check_layer_names(model: nn.Module, names: list[str], path: str) -> None:
    """BadInput naming the field path for any name that is not a layer of the model."""
    known = [n for n, _ in model.named_modules() if n]
    for n in names:
        if n not in known:
            import difflib
            close = difflib.get_close_matches(n, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (layers: {', '.join(weight_layers(model))})"
            raise BadInput(f"{path}.{n}: no layer named {n!r} in the model{hint}")


def bits_for(name: str, module: nn.Module, bits: int | dict[str, int]) -> int:
    if isinstance(bits, int):
        return bits
    if name in bits:
        return bits[name]
    kind = layer_type(module)
    return bits.get(kind, DEFAULT_BITS) if kind else DEFAULT_BITS


def bits_layer_names(bits: int | dict[str, int]) -> list[str]:
    """The keys of a bits mapping that name layers rather than layer types."""
    return [] if isinstance(bits, int) else [k for k in bits if k not in TYPE_KEYS]
