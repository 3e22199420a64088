"""The model browser's data: one row per module that owns parameters, totals, accuracy."""
from __future__ import annotations

from typing import Any

import torch

from . import memory_budget, metrics
from .data import DataBundle, DataSettings, load_data
from .errors import BadInput
from .models import LoadedModel
from .specs import check_fits, load_model, preprocess_of


def example_for(loaded: LoadedModel) -> torch.Tensor:
    if not loaded.input_shape:
        raise BadInput(f"{loaded.spec}: its input shape is unknown; give --data")
    batch = int(loaded.meta.get("batch") or 1)     # a program exported for one batch size runs only at that size
    return torch.randn(batch, *loaded.input_shape, generator=torch.Generator().manual_seed(0))


def inspect_loaded(loaded: LoadedModel, data: DataBundle | None = None) -> dict[str, Any]:
    example = data.example_input(int(loaded.meta.get("batch") or 1)) if data is not None else example_for(loaded)
    try:
        total_flops, per_module = metrics.flops_per_module(loaded.module, example)     # one forward pass
        rows = metrics.layer_table(loaded.module, flops=per_module)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - a model that does not run on its own input shape: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise BadInput(f"{loaded.spec}: does not run on an input of shape {list(example.shape)} ({first})") from None
    if len(example) > 1:                  # FLOPs are per sample
        for r in rows:
            r.flops = None if r.flops is None else r.flops // len(example)
        total_flops //= len(example)
    total = metrics.summarize(rows, total_flops)
    return {
        "model": loaded.spec,
        "data": data.spec if data is not None else None,
        **({"data_settings": data.settings.to_dict()} if data is not None else {}),
        **({"preprocessing": data.preprocessing.to_dict()} if data is not None and data.preprocessing else {}),
        "input_shape": list(example.shape[1:]),
        "layers": [r.to_dict() for r in rows],
        "total": total,
        "accuracy": metrics.accuracy(loaded.module, data.test) if data is not None else None,
        **({"preprocess": loaded.preprocess} if loaded.preprocess else {}),
        **({"classes": loaded.classes} if loaded.classes else {}),
        **({"notes": loaded.meta["notes"]} if loaded.meta.get("notes") else {}),
    }


def inspect(spec: str, data_spec: str | dict[str, Any] | DataSettings | None = None, arch: str | None = None, trust: bool = False, seed: int = 0,
            keep_head: bool = False, replace_head: bool = False) -> dict[str, Any]:
    data = load_data(data_spec, preprocess=preprocess_of(spec)) if data_spec else None
    loaded = load_model(spec, data.input_shape if data else None, data.num_classes if data else None, arch=arch, trust=trust,
                        seed=seed, keep_head=keep_head, keep_init=False, replace_head=replace_head)     # nothing to rewind to: no copy
    if data is not None:
        memory_budget.check_run(loaded, data, spec)     # evaluation at the eval batch size, before it runs
        check_fits(loaded.module, data, spec)
    return inspect_loaded(loaded, data)
