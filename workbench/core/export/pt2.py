"""`pt2`: a `torch.export` program (.pt2): the graph and weights, loadable without the model's Python code."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..untrusted import load_pt2_program, trainable_module
from . import ExportSource, Format


def write(source: ExportSource, path: Path) -> dict:
    model = source.model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.export.export(model, (source.example,), dynamic_shapes=({0: batch},))
        dynamic = True
    except Exception:  # noqa: BLE001 - some graphs specialise the batch size; export them for the example's
        program = torch.export.export(model, (source.example,))
        dynamic = False
    buffer = io.BytesIO()   # via a buffer: the atomic temporary file's name does not end in .pt2
    torch.export.save(program, buffer)
    path.write_bytes(buffer.getvalue())
    return {"dynamic_batch": dynamic, **({} if dynamic else {"batch": int(source.example.shape[0])})}


def read(path: Path, record: dict):
    # Read back exactly as a user's untrusted file would be: a file we write must pass the same scan.
    return trainable_module(load_pt2_program(path, trust=False)).eval()


FORMAT = Format("pt2", ".pt2", "torch.export program (graph + weights, no Python code needed)", write, read,
                tolerance=1e-5)
