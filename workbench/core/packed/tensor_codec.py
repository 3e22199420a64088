"""One tensor <-> the streams of the packed format, choosing the smallest layout per tensor.

Positions: `dense` (every element is an entry) or `sparse` with gap bits 4..8 (sparse_index.py).
Values:    `raw` (each entry's value in the smallest float type that holds every value exactly:
           fp16, bf16 or the tensor's own) or `codebook` (at most 256 distinct values, so clustered
           layers: a codebook plus one Huffman-coded index per entry; fillers get an extra symbol).
Gap and index streams are Huffman coded. Everything works on the bit patterns of the values, so the
round trip is bit-exact (NaN payloads included), except that -0.0, which masking leaves behind
(negative weight x 0), is stored as a zero like +0.0: equal values, identical outputs. Sizes are computed from symbol counts before
anything is encoded, and the cheapest combination is written.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import huffman
from .sparse_index import GAP_BITS, entry_count, from_gaps, to_gaps

MAX_CODEBOOK = 256
PATTERN = {torch.float32: (torch.int32, np.uint32), torch.float16: (torch.int16, np.uint16),
           torch.bfloat16: (torch.int16, np.uint16)}
STREAMS = ["codebook", "index_table", "indices", "gap_table", "gaps", "values"]


class CodecError(ValueError):
    """Header fields or streams of a tensor that do not fit together."""


@dataclass
class Encoded:
    meta: dict[str, Any]             # goes into the file header
    streams: list[bytes]             # in STREAMS order
    report: dict[str, Any] = field(default_factory=dict)


def patterns(t: torch.Tensor) -> np.ndarray:
    """A float tensor's bit patterns as unsigned ints (flat)."""
    int_type, np_type = PATTERN[t.dtype]
    return t.detach().cpu().contiguous().reshape(-1).view(int_type).numpy().view(np_type)


def storage_for(values: np.ndarray, dtype: torch.dtype) -> str:
    """The narrowest storage holding `values` (float32 bit patterns) exactly: f16, bf16 or f32."""
    if dtype == torch.float16:
        return "f16"
    if dtype == torch.bfloat16:
        return "bf16"
    floats = values.view(np.float32)
    with np.errstate(over="ignore"):
        if np.array_equal(floats.astype(np.float16).astype(np.float32).view(np.uint32), values):
            return "f16"
    if not (values & 0xFFFF).any():
        return "bf16"
    return "f32"


def store(values: np.ndarray, storage: str, dtype: torch.dtype) -> bytes:
    if dtype == torch.float32 and storage == "f16":
        return values.view(np.float32).astype(np.float16).tobytes()
    if dtype == torch.float32 and storage == "bf16":
        return (values >> 16).astype(np.uint16).tobytes()
    return values.tobytes()


def load(buf: bytes, storage: str, dtype: torch.dtype) -> np.ndarray:
    itemsize = 4 if storage == "f32" else 2
    if len(buf) % itemsize:
        raise CodecError("value stream length is not a whole number of values")
    if dtype != torch.float32:
        return np.frombuffer(buf, dtype=np.uint16)
    if storage == "f16":
        return np.frombuffer(buf, dtype=np.float16).astype(np.float32).view(np.uint32)
    if storage == "bf16":
        return np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16
    return np.frombuffer(buf, dtype=np.uint32)


def code_for(counts: np.ndarray, optimal: bool = True) -> np.ndarray:
    """Code lengths for a stream: Huffman, or (optimal=False) fixed width over the whole alphabet."""
    if optimal:
        return huffman.code_lengths(counts)
    width = max(1, int(np.ceil(np.log2(max(2, len(counts))))))
    return np.full(len(counts), width, dtype=np.int64)


def _stream_cost(counts: np.ndarray, optimal: bool) -> int:
    lengths = code_for(counts, optimal)
    return (huffman.encoded_bits(counts, lengths) + 7) // 8 + len(huffman.table_bytes(lengths))


def _plans(bits: np.ndarray, dtype: torch.dtype, optimal: bool, gap_choices: list[int]) -> Iterator[tuple[int, int, str]]:
    """Every (cost, positions, values) choice for a tensor's bit patterns."""
    nz = np.flatnonzero(bits)
    itemsize = 4 if storage_for(bits, dtype) == "f32" else 2
    books = {0: _value_counts(bits), 1: _value_counts(bits[nz]) if nz.size < bits.size else None}
    for gap_bits in [0, *gap_choices] if nz.size < bits.size else [0]:   # nothing to skip: dense only
        if gap_bits == 0:
            entries, gap_cost, counts = bits.size, 0, books[0]
        else:
            entries = entry_count(nz, gap_bits)
            gaps, _ = to_gaps(nz, gap_bits)
            gap_cost = _stream_cost(np.bincount(gaps, minlength=1 << gap_bits), optimal)
            counts = None if books[1] is None else np.append(books[1], entries - nz.size)   # + the filler symbol
        yield gap_cost + entries * itemsize, gap_bits, "raw"
        if counts is not None and entries:
            yield gap_cost + (len(counts) - bool(gap_bits)) * itemsize + _stream_cost(counts, optimal), gap_bits, "codebook"


def _value_counts(values: np.ndarray) -> np.ndarray | None:
    """How often each distinct value occurs, or None when there are more than a codebook holds."""
    if np.unique(values[:4096]).size > MAX_CODEBOOK:      # cheap early answer for unclustered layers
        return None
    distinct, counts = np.unique(values, return_counts=True)
    return counts if distinct.size <= MAX_CODEBOOK else None


def encode_tensor(name: str, t: torch.Tensor, huffman_coding: bool = True, gap_bits: int | None = None) -> Encoded:
    """Encode one tensor in its cheapest layout.

    huffman_coding=False writes fixed-width index and gap streams (for comparison); gap_bits (4-8) fixes
    the width of the relative indices of sparse layouts instead of trying every width.
    """
    if gap_bits is not None and gap_bits not in GAP_BITS:
        raise ValueError(f"gap_bits must be in 4..8, got {gap_bits}")
    shape, dtype = list(t.shape), t.dtype
    meta: dict[str, Any] = {"n": name, "s": shape, "d": str(dtype).removeprefix("torch.")}
    if dtype not in PATTERN:
        raw = t.detach().cpu().contiguous().numpy().tobytes()
        streams = [b"", b"", b"", b"", b"", raw]
        return Encoded({**meta, "p": 0, "v": "raw", "w": meta["d"], "e": t.numel(), "z": [len(s) for s in streams]},
                       streams, {"values": len(raw), "layout": "raw"})
    bits = patterns(t)
    negative_zero = bits.dtype.type(1 << (8 * bits.itemsize - 1))
    bits = np.where(bits == negative_zero, bits.dtype.type(0), bits)   # -0.0 is a pruned zero too
    choices = list(GAP_BITS) if gap_bits is None else [gap_bits]
    _, gap_bits, values_kind = min(_plans(bits, dtype, huffman_coding, choices), key=lambda plan: plan[0])
    if gap_bits:
        pos = np.flatnonzero(bits)
        gaps, real = to_gaps(pos, gap_bits)
        entry_vals = np.zeros(gaps.size, dtype=bits.dtype)
        entry_vals[real] = bits[pos]
    else:
        gaps, real, entry_vals = np.zeros(0, np.int64), np.ones(bits.size, bool), bits
    storage = storage_for(entry_vals, dtype)
    streams = [b""] * 6
    report: dict[str, Any] = {"layout": f"{'sparse' if gap_bits else 'dense'}+{values_kind}", "gap_bits": gap_bits or None,
                    "storage": storage, "entries": int(entry_vals.size), "nonzero": int(np.count_nonzero(bits)),
                    "fillers": int((~real).sum()), "entropy_bytes": {}}
    if values_kind == "codebook":
        distinct, inverse = np.unique(entry_vals[real], return_inverse=True)
        symbols = np.full(entry_vals.size, distinct.size, dtype=np.int64)   # fillers: symbol K
        symbols[real] = inverse
        counts = np.bincount(symbols, minlength=distinct.size + (1 if gap_bits else 0))
        lengths = code_for(counts, huffman_coding)
        streams[0] = store(distinct, storage, dtype)
        streams[1], streams[2] = huffman.table_bytes(lengths), huffman.encode(symbols, lengths)
        report["codebook_size"] = int(distinct.size)
        report["entropy_bytes"]["indices"] = huffman.entropy_bits(counts) / 8
    else:
        streams[5] = store(entry_vals, storage, dtype)
    if gap_bits:
        counts = np.bincount(gaps, minlength=1 << gap_bits)
        lengths = code_for(counts, huffman_coding)
        streams[3], streams[4] = huffman.table_bytes(lengths), huffman.encode(gaps, lengths)
        report["entropy_bytes"]["gaps"] = huffman.entropy_bits(counts) / 8
    sizes = [len(s) for s in streams]
    report.update({"codebook": sizes[0], "indices": sizes[2], "gaps": sizes[4], "tables": sizes[1] + sizes[3],
                   "values": sizes[5]})
    meta.update({"p": gap_bits, "v": values_kind, "w": storage, "e": int(entry_vals.size), "z": sizes})
    return Encoded(meta, streams, report)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise CodecError(message)


def decode_tensor(meta: dict[str, Any], streams: list[memoryview], dtype: torch.dtype, numel: int) -> torch.Tensor:
    """Rebuild the flat tensor from its streams; validates every count before allocating."""
    gap_bits, kind, storage, entries = meta["p"], meta["v"], meta["w"], meta["e"]
    shape = meta["s"]
    if dtype not in PATTERN:
        _check(kind == "raw" and len(streams[5]) == numel * torch.empty(0, dtype=dtype).element_size(),
               "raw tensor size does not match its shape")
        return torch.frombuffer(bytearray(streams[5]), dtype=dtype).reshape(shape) if numel else torch.zeros(shape, dtype=dtype)
    _check(storage in ("f32", "f16", "bf16") and gap_bits in (0, *GAP_BITS) and kind in ("raw", "codebook"),
           "unknown layout")
    _check(0 <= entries <= numel if gap_bits else entries == numel, "entry count does not fit the shape")
    if kind == "codebook":
        book = load(bytes(streams[0]), storage, dtype)
        _check(book.size <= MAX_CODEBOOK, "codebook too large")
        lengths, end = huffman.read_table(streams[1])
        _check(end == len(streams[1]), "index table length mismatch")
        symbols = huffman.decode(streams[2], entries, lengths)
        _check(bool(symbols.size == 0 or symbols.max() <= book.size - (0 if gap_bits else 1)), "index out of range")
        values = np.append(book, np.zeros(1, book.dtype))[symbols]
    else:
        _check(len(streams[5]) == entries * (4 if storage == "f32" else 2), "value stream length mismatch")
        values = load(bytes(streams[5]), storage, dtype)
    out = np.zeros(numel, dtype=PATTERN[dtype][1])
    if gap_bits:
        lengths, end = huffman.read_table(streams[3])
        _check(end == len(streams[3]), "gap table length mismatch")
        gaps = huffman.decode(streams[4], entries, lengths)
        _check(bool(gaps.size == 0 or gaps.max() < (1 << gap_bits)), "gap out of range")
        positions = from_gaps(gaps)
        _check(bool(positions.size == 0 or positions[-1] < numel), "positions run past the end of the tensor")
        out[positions] = values
    else:
        out[:] = values
    int_type = PATTERN[dtype][0]
    return torch.from_numpy(out.view(np.int32 if int_type == torch.int32 else np.int16)).view(dtype).reshape(shape)
