"""`packed`: the Deep Compression format: sparse relative indices, shared-value codebooks, Huffman coding.

Every tensor of the state dict is encoded by `core/packed/tensor_codec.py` in its cheapest layout;
the header holds the model record, so the file reloads without --arch (`workbench export x.packed`,
or `--model x.packed`). The loader rebuilds the architecture, checks every tensor's name, shape and
dtype against it before decoding anything, and decodes bit-exactly.
`write` returns the size breakdown per layer and per stream with the entropy bound of the index
and gap streams; it lands in report.json `exports[].breakdown`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..errors import CheckpointError
from ..limits import clip, is_int, short
from ..models import LoadedModel, load_state_into, planned_layout, rebuild
from ..packed.container import PREFIX, read_container, write_container
from ..packed.tensor_codec import Encoded, TensorError, decode_tensors, encode_tensor
from ..record_checks import check_layout, check_record, dtype_name
from . import ExportSource, Format

STREAM_KEYS = ["codebook", "indices", "gaps", "tables", "values"]


def write(source: ExportSource, path: Path, huffman_coding: bool = True, gap_bits: int | None = None) -> dict[str, Any]:
    """Write the packed file; huffman_coding=False stores fixed-width streams (the paper's "+clustering" step);
    gap_bits (4-8) fixes the relative-index width, None picks the cheapest per tensor."""
    masks, books = source.state.get("masks", {}), source.state.get("codebooks", {})
    encoded, payload = [], []
    for name, t in source.model.state_dict().items():
        enc = encode_tensor(name, t.detach().cpu(), huffman_coding, gap_bits)
        enc.meta.update({"mk": int(name in masks), "cb": int(name in books)})
        encoded.append(enc)
        payload.extend(enc.streams)
    header = {"record": source.record, "tensors": [e.meta for e in encoded]}
    head_bytes = write_container(path, header, payload)
    return breakdown(encoded, PREFIX.size + head_bytes)


def breakdown(encoded: list[Encoded], header_bytes: int) -> dict[str, Any]:
    """Bytes per layer and per stream, with the entropy bound of the Huffman-coded streams."""
    layers, streams = {}, dict.fromkeys(STREAM_KEYS, 0)
    bound = {"indices": 0.0, "gaps": 0.0}
    for e in encoded:
        r = e.report
        row = {k: r.get(k, 0) for k in STREAM_KEYS}
        row["total"] = sum(row.values())
        row.update({k: r[k] for k in ("layout", "gap_bits", "storage", "codebook_size", "nonzero", "fillers") if k in r})
        row["entropy_bytes"] = {k: round(v, 1) for k, v in r.get("entropy_bytes", {}).items()}
        layers[e.meta["n"]] = row
        for k in STREAM_KEYS:
            streams[k] += row[k]
        for k, v in r.get("entropy_bytes", {}).items():
            bound[k] += v
    return {"header": header_bytes, "streams": streams, "entropy_bound": {k: round(v, 1) for k, v in bound.items()},
            "total": header_bytes + sum(streams.values()), "layers": layers}


def _tensor_metas(metas: Any, path: Path) -> list[dict[str, Any]]:
    """The header's tensor entries, each {"n": name, "s": [sizes], "d": dtype, ...}; CheckpointError otherwise."""
    for i, m in enumerate(metas if isinstance(metas, list) else [None]):
        ok = (isinstance(m, dict) and isinstance(m.get("n"), str) and isinstance(m.get("d"), str)
              and isinstance(m.get("s"), list) and all(is_int(v) and v >= 0 for v in m["s"]))
        if not ok:
            raise CheckpointError(f"{path}: not a valid packed file (tensor entry {i} should hold a name, "
                                  f"a list of sizes and a dtype, got {short(m)})")
    return cast("list[dict[str, Any]]", metas)   # checked above: a list of such entries


def load(path: str | Path) -> LoadedModel:
    """Read a packed file into a model (and the masks/codebooks it was written with).

    The record is validated and the model it describes worked out on the meta device; every tensor's
    name, shape and dtype must match it before the model is built for real or anything decoded."""
    path = Path(path)
    header, streams = read_container(path)
    record = check_record(header.get("record"), str(path))
    metas = _tensor_metas(header["tensors"], path)
    expected = planned_layout(record, str(path), path.stat().st_size)
    if expected is not None:
        check_layout(expected, {m["n"]: (tuple(m["s"]), m["d"]) for m in metas}, str(path), record["base"])
    model = rebuild(record, str(path), checked=True)
    expected_sd = model.state_dict()
    if [m["n"] for m in metas] != list(expected_sd):
        raise CheckpointError(f"{path}: tensors in the file do not match the architecture {clip(record['base'])}")
    sd: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, torch.Tensor]] = {"masks": {}, "codebooks": {}}
    for meta in metas:
        ref = expected_sd[meta["n"]]
        if list(meta["s"]) != list(ref.shape) or meta["d"] != dtype_name(ref.dtype):
            raise CheckpointError(f"{path}: {meta['n']} is {meta['d']} {meta['s']} in the file, "
                                  f"{dtype_name(ref.dtype)} {list(ref.shape)} in the architecture")
    try:                                     # all tensors at once: their Huffman streams decode side by side
        tensors = decode_tensors([(m, parts, expected_sd[m["n"]].dtype, expected_sd[m["n"]].numel())
                                  for m, parts in zip(metas, streams)])
    except TensorError as exc:
        raise CheckpointError(f"{path}: corrupt data for {exc.name} ({exc.problem[:120]})") from None
    for meta, t in zip(metas, tensors):
        sd[meta["n"]] = t
        if meta.get("mk"):
            state["masks"][meta["n"]] = t != 0
        if meta.get("cb"):
            state["codebooks"][meta["n"]] = torch.unique(t[t != 0].float())
    try:
        load_state_into(model, sd, record["base"])
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc.message}") from None
    return LoadedModel(model.eval(), str(path), tuple(record["input_shape"]), record["num_classes"], record,
                       state=state, meta={"format": "packed"})


def read(path: Path, record: dict[str, Any]) -> nn.Module:
    return load(path).module


def _applies(source: ExportSource) -> str | None:
    if source.record.get("frozen") or "base" not in source.record:
        return "packed needs a model that can be rebuilt from its record (not a frozen .pt2/TorchScript/pickle)"
    for k, v in source.model.state_dict().items():
        if not isinstance(v, torch.Tensor) or v.is_quantized:
            return f"packed holds float models; {k} is quantized (use state_dict)"
    return None


FORMAT = Format("packed", ".packed", "Deep Compression: sparse relative indices + codebooks + Huffman coding",
                write, read, tolerance=0.0, candidate=True, applies=_applies,
                after_int8="packed holds float models only; export state_dict after Quantize, or packed before it")
