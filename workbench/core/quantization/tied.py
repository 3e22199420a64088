"""Fine-tuning through a tied parametrisation: some weights are functions of other trainable tensors.

k-means sharing: weight = cat([0], codebook)[slots], so autograd gives each centroid the sum of its
weights' gradients (the Deep Compression rule). Binary/ternary: weight = latent + (q(latent) - latent)
.detach() (straight-through estimator). The loss runs the model with the produced weights through
`torch.func.functional_call`; after every optimiser step the produced weights are written into the
module, so evaluation, snapshots and exports always see the tied values.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ..events import Event
from ..training import fit

Producer = Callable[[], torch.Tensor]


def write_back(model: nn.Module, produce: dict[str, Producer]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, fn in produce.items():
            params[name].copy_(fn().to(params[name].dtype))


def tied_fit(session: Any, produce: dict[str, Producer], sources: Iterable[nn.Parameter], epochs: int, lr: float,
             optimizer: str = "adam", batch_size: int | None = None, label: str = "quantize") -> Iterator[Event]:
    """Train `sources` (and every untied parameter) with the tied weights produced from them (`session`: the
    stage's session, as `training.fit` takes it)."""
    model = session.model
    params = dict(model.named_parameters())
    frozen = [params[n] for n in produce if params[n].requires_grad]
    for p in frozen:
        p.requires_grad_(False)   # tied weights are outputs, never trained directly

    def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weights = {n: fn() for n, fn in produce.items()}
        return nn.functional.cross_entropy(functional_call(m, weights, (x,)), y)

    try:
        yield from fit(session, epochs, lr, optimizer, batch_size=batch_size, loss_fn=loss_fn,
                       extra_params=list(sources), after_step=lambda: write_back(model, produce), label=label)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        write_back(model, produce)
