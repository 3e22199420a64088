"""`pt2`: a `torch.export` program (.pt2): the graph and weights, loadable without the model's Python code.

A .pt2 is a program, so the workbench loads one only with the user's trust; the export's details carry the
sha256 of the file's bytes (in report.json), checked when the workbench opens its own export again."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..untrusted import load_pt2_program, open_zip, pt2_code_risks, trainable_module
from . import ExportSource, Format


def write(source: ExportSource, path: Path) -> dict[str, Any]:
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
    return {"dynamic_batch": dynamic, **({} if dynamic else {"batch": int(source.example.shape[0])}),
            "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}


def read(path: Path, record: dict[str, Any]) -> nn.Module:
    # the file this export has just written (a program: any other .pt2 needs the user's trust); it must also
    # pass the scan an untrusted file gets, so that what we write never holds pickled parts
    archive = open_zip(path)
    if archive is None:
        raise ValueError("the written file is not a zip archive")
    with archive as zf:
        risks = pt2_code_risks(zf)
    if risks:
        raise ValueError(f"the written archive would unpickle objects: {'; '.join(risks)}")
    return trainable_module(load_pt2_program(path, trust=True)).eval()


FORMAT = Format("pt2", ".pt2", "torch.export program (graph + weights, no Python code needed)", write, read,
                tolerance=1e-5,
                after_int8="torch.export does not take torch.ao int8 models; export pt2 before Quantize, or "
                "state_dict after it")
