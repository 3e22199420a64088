"""An exported file's own top-1 accuracy: the file read back by its format's loader (onnxruntime, the program or
module the loader gives) and run batch by batch. Used by the export stage and by `workbench export --data`."""
from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..metrics import accuracy_steps

if TYPE_CHECKING:
    from . import Format


def file_accuracy_steps(fmt: Format, path: Path, record: dict[str, Any], details: dict[str, Any],
                        batches: Iterable[Any]) -> Generator[tuple[int, int | None], None, float]:
    """Top-1 accuracy in [0, 1] of the file at `path` on `batches` (the generator's return value), yielding
    (batches done, batches in all or None) after each batch; `details` are the export's (a program exported for a
    fixed batch gets batches of that size). The file is read at the first step."""
    run = logits_of(fmt.read(path, record), None if details.get("dynamic_batch", True) else details.get("batch"))
    return (yield from accuracy_steps(run, batches, "cpu"))


def file_accuracy(fmt: Format, path: Path, record: dict[str, Any], details: dict[str, Any], batches: Iterable[Any]) -> float:
    """`file_accuracy_steps` run to the end."""
    steps = file_accuracy_steps(fmt, path, record, details, batches)
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return float(end.value)


def logits_of(run: Callable[[torch.Tensor], Any], batch: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The file's outputs as one logits tensor; a program exported for a fixed batch gets batches of that size
    (the last one padded with its last sample)."""
    def call(x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(x, batch) if batch else (x,)
        outs = []
        for chunk in chunks:
            n = len(chunk)
            if batch and n < batch:
                chunk = torch.cat([chunk, chunk[-1:].expand(batch - n, *chunk.shape[1:])])
            out = run(chunk.cpu())
            outs.append((out[0] if isinstance(out, (tuple, list)) else out)[:n].float())
        return torch.cat(outs)
    return call
