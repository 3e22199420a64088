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

from . import chunked, huffman
from .sparse_index import GAP_BITS, from_gaps, gap_counts, to_gaps

MAX_CODEBOOK = 256
PATTERN = {torch.float32: (torch.int32, np.uint32), torch.float16: (torch.int16, np.uint16),
           torch.bfloat16: (torch.int16, np.uint16)}
STREAMS = ["codebook", "index_table", "indices", "gap_table", "gaps", "values"]


class CodecError(ValueError):
    """Header fields or streams of a tensor that do not fit together."""


class TensorError(CodecError):
    """A tensor of a file that cannot be decoded: its name and the problem."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name, self.problem = name, problem


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


def code_for(counts: np.ndarray, optimal: bool = True, cache: dict[bytes, np.ndarray] | None = None) -> np.ndarray:
    """Code lengths for a stream: Huffman, or (optimal=False) fixed width over the whole alphabet.
    `cache`: lengths already worked out for these counts (one tensor's plans and streams ask again)."""
    counts = np.asarray(counts, dtype=np.int64)
    key = counts.tobytes() + bytes([optimal])
    if cache is not None and key in cache:
        return cache[key]
    if optimal:
        lengths = huffman.code_lengths(counts, huffman.LIMIT)
    else:
        width = max(1, int(np.ceil(np.log2(max(2, len(counts))))))
        lengths = np.full(len(counts), width, dtype=np.int64)
    if cache is not None:
        cache[key] = lengths
    return lengths


def _stream_cost(counts: np.ndarray, optimal: bool, cache: dict[bytes, np.ndarray]) -> int:
    lengths = code_for(counts, optimal, cache)
    return ((huffman.encoded_bits(counts, lengths) + 7) // 8 + huffman.table_size(lengths)
            + chunked.table_cost(int(counts.sum()), lengths))


def _plans(bits: np.ndarray, nz: np.ndarray, skips: np.ndarray, dtype: torch.dtype, optimal: bool,
           gap_choices: list[int], book: _Book | None, cache: dict[bytes, np.ndarray]) -> Iterator[tuple[int, int, str]]:
    """Every (cost, positions, values) choice for a tensor's bit patterns (`nz`: where they are not zero,
    `skips`: the zeros before each of those, `book`: the codebook of their values)."""
    itemsize = 4 if storage_for(bits if book is None else book.values, dtype) == "f32" else 2
    dense_book = None if book is None else book.with_zeros(bits.size - nz.size)
    gaps = np.bincount(skips) if nz.size else np.zeros(1, np.int64)
    for gap_bits in [0, *gap_choices] if nz.size < bits.size else [0]:   # nothing to skip: dense only
        if gap_bits == 0:
            entries, gap_cost, counts = bits.size, 0, None if dense_book is None else dense_book.counts
        else:
            gap_hist = gap_counts(gaps, gap_bits)
            entries = int(gap_hist.sum())
            gap_cost = _stream_cost(gap_hist, optimal, cache)
            counts = None if book is None else np.append(book.counts, entries - nz.size)   # + the filler symbol
        yield gap_cost + entries * itemsize, gap_bits, "raw"
        if counts is not None and entries:
            yield gap_cost + (len(counts) - bool(gap_bits)) * itemsize + _stream_cost(counts, optimal, cache), gap_bits, "codebook"


@dataclass
class _Book:
    """The distinct non-zero values of a tensor, each value's index among them, and their counts."""
    values: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> _Book | None:
        """None when there are more distinct values than a codebook holds."""
        sample = np.unique(values[:4096])
        if sample.size > MAX_CODEBOOK:                        # cheap early answer for unclustered layers
            return None
        found = cls._lookup(sample, values)                   # the sample usually holds every value
        if found is None:
            distinct = np.unique(values)
            found = None if distinct.size > MAX_CODEBOOK else cls._lookup(distinct, values)
        return found

    @classmethod
    def _lookup(cls, distinct: np.ndarray, values: np.ndarray) -> _Book | None:
        """Each value's index among `distinct` through a 4096-entry table on 12 bits of the pattern that tell
        the distinct values apart (None if a value is not among them); np.unique when no such 12 bits exist."""
        for shift in range(8 * values.itemsize - 11):
            keys = (distinct >> shift) & 0xFFF
            if np.unique(keys).size == distinct.size:
                index = np.zeros(4096, dtype=np.int64)
                index[keys] = np.arange(distinct.size)
                inverse = index[(values >> shift) & 0xFFF]
                if distinct.size and not np.array_equal(distinct[inverse], values):
                    return None
                return cls(distinct, inverse, np.bincount(inverse, minlength=distinct.size))
        distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        return cls(distinct, inverse, counts)

    def with_zeros(self, zeros: int) -> _Book | None:
        """The codebook of the whole tensor (zero the first value when there are zeros)."""
        if not zeros:
            return self
        if self.values.size + 1 > MAX_CODEBOOK:
            return None
        return _Book(np.concatenate([np.zeros(1, self.values.dtype), self.values]), self.inverse + 1,
                     np.concatenate([[zeros], self.counts]))


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
    negative_zero = bits.dtype.type(1 << (8 * bits.itemsize - 1))    # -0.0 is a pruned zero too
    choices = list(GAP_BITS) if gap_bits is None else [gap_bits]
    nz = np.flatnonzero(bits.view(np.float32) != 0 if bits.dtype == np.uint32 else bits & ~negative_zero)
    book = _Book.of(bits[nz])
    skips = np.diff(nz, prepend=-1) - 1
    cache: dict[bytes, np.ndarray] = {}
    plans = _plans(bits, nz, skips, dtype, huffman_coding, choices, book, cache)
    _, gap_bits, values_kind = min(plans, key=lambda plan: plan[0])
    entries, fillers = bits.size, 0
    if gap_bits:
        gaps, real = to_gaps(nz, gap_bits, skips)
        entries, fillers = gaps.size, gaps.size - nz.size
    streams = [b""] * 6
    report: dict[str, Any] = {"layout": f"{'sparse' if gap_bits else 'dense'}+{values_kind}", "gap_bits": gap_bits or None,
                              "entries": entries, "nonzero": int(nz.size), "fillers": fillers, "entropy_bytes": {}}
    if values_kind == "codebook":
        assert book is not None                                           # a codebook plan needs one
        if gap_bits:
            symbols = book.inverse
            if fillers:
                symbols = np.full(entries, book.values.size, dtype=np.int64)  # fillers: symbol K
                symbols[real] = book.inverse
            counts = np.append(book.counts, fillers)
        else:
            book = book.with_zeros(bits.size - nz.size)
            assert book is not None
            symbols = np.zeros(entries, dtype=np.int64)
            symbols[nz] = book.inverse
            counts = book.counts
        storage = storage_for(book.values, dtype)
        streams[0] = store(book.values, storage, dtype)
        streams[1], streams[2] = _huffman_streams(symbols, counts, huffman_coding, cache)
        report["codebook_size"] = int(book.values.size)
        report["entropy_bytes"]["indices"] = huffman.entropy_bits(counts) / 8
    else:
        if gap_bits:
            entry_vals = np.zeros(entries, dtype=bits.dtype)
            entry_vals[real] = bits[nz]
        else:
            entry_vals = np.where(bits == negative_zero, bits.dtype.type(0), bits)
        storage = storage_for(entry_vals, dtype)
        streams[5] = store(entry_vals, storage, dtype)
    if gap_bits:
        counts = np.bincount(gaps, minlength=1 << gap_bits)
        streams[3], streams[4] = _huffman_streams(gaps, counts, huffman_coding, cache)
        report["entropy_bytes"]["gaps"] = huffman.entropy_bits(counts) / 8
    sizes = [len(s) for s in streams]
    report.update({"storage": storage, "codebook": sizes[0], "indices": sizes[2], "gaps": sizes[4],
                   "tables": sizes[1] + sizes[3], "values": sizes[5]})
    meta.update({"p": gap_bits, "v": values_kind, "w": storage, "e": entries, "z": sizes})
    return Encoded(meta, streams, report)


def _huffman_streams(symbols: np.ndarray, counts: np.ndarray, optimal: bool,
                     cache: dict[bytes, np.ndarray]) -> tuple[bytes, bytes]:
    """(code-length table + chunk table, coded symbols) of one stream."""
    lengths = code_for(counts, optimal, cache)
    return huffman.table_bytes(lengths) + chunked.chunk_table(symbols, lengths), huffman.encode(symbols, lengths)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise CodecError(message)


@dataclass
class _Pending:
    """A tensor being decoded: what its header and raw streams gave, and which Huffman streams it waits for."""
    meta: dict[str, Any]
    dtype: torch.dtype
    numel: int
    done: torch.Tensor | None = None
    book: np.ndarray | None = None
    values: np.ndarray | None = None
    indices: int = -1                    # position of its index stream in the batch
    gaps: int = -1


def _stream(part_table: memoryview, data: memoryview, n: int, batch: list[chunked.Stream], what: str) -> int:
    lengths, end = huffman.read_table(part_table)
    chunks = chunked.read_chunks(part_table[end:], n, lengths, len(data))
    _check(chunks is not None or end == len(part_table), f"{what} table length mismatch")
    batch.append(chunked.Stream(data, n, lengths, *(chunks or (None, 0))))
    return len(batch) - 1


def _prepare(meta: dict[str, Any], streams: list[memoryview], dtype: torch.dtype, numel: int,
             batch: list[chunked.Stream]) -> _Pending:
    """Validate a tensor's header fields and raw streams; queue its Huffman streams in `batch`."""
    gap_bits, kind, storage, entries = meta["p"], meta["v"], meta["w"], meta["e"]
    job = _Pending(meta, dtype, numel)
    if dtype not in PATTERN:
        _check(kind == "raw" and len(streams[5]) == numel * torch.empty(0, dtype=dtype).element_size(),
               "raw tensor size does not match its shape")
        job.done = torch.frombuffer(bytearray(streams[5]), dtype=dtype) if numel else torch.zeros(0, dtype=dtype)
        return job
    _check(storage in ("f32", "f16", "bf16") and gap_bits in (0, *GAP_BITS) and kind in ("raw", "codebook"),
           "unknown layout")
    _check(is_count(entries) and (entries <= numel if gap_bits else entries == numel), "entry count does not fit the shape")
    if kind == "codebook":
        job.book = load(bytes(streams[0]), storage, dtype)
        _check(job.book.size <= MAX_CODEBOOK, "codebook too large")
        job.indices = _stream(streams[1], streams[2], entries, batch, "index")
    else:
        _check(len(streams[5]) == entries * (4 if storage == "f32" else 2), "value stream length mismatch")
        job.values = load(bytes(streams[5]), storage, dtype)
    if gap_bits:
        job.gaps = _stream(streams[3], streams[4], entries, batch, "gap")
    return job


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _finish(job: _Pending, decoded: list[np.ndarray]) -> torch.Tensor:
    if job.done is not None:
        return job.done.reshape(job.meta["s"])
    gap_bits, dtype = job.meta["p"], job.dtype
    values = job.values
    if job.book is not None:
        symbols = decoded[job.indices]
        _check(bool(symbols.size == 0 or symbols.max() <= job.book.size - (0 if gap_bits else 1)), "index out of range")
        values = np.append(job.book, np.zeros(1, job.book.dtype))[symbols]
    assert values is not None
    out = np.zeros(job.numel, dtype=PATTERN[dtype][1])
    if gap_bits:
        gaps = decoded[job.gaps]
        _check(bool(gaps.size == 0 or gaps.max() < (1 << gap_bits)), "gap out of range")
        positions = from_gaps(gaps)
        _check(bool(positions.size == 0 or positions[-1] < job.numel), "positions run past the end of the tensor")
        out[positions] = values
    else:
        out[:] = values
    int_type = np.int32 if PATTERN[dtype][0] == torch.int32 else np.int16
    return torch.from_numpy(out.view(int_type)).view(dtype).reshape(job.meta["s"])


DECODE_ERRORS = (CodecError, huffman.HuffmanError, KeyError, TypeError, ValueError, IndexError, OverflowError)


def decode_tensors(items: list[tuple[dict[str, Any], list[memoryview], torch.dtype, int]]) -> list[torch.Tensor]:
    """Rebuild tensors (meta, streams, dtype, numel) from their streams, every count validated before
    anything is allocated, all their Huffman streams decoded together; TensorError names a bad tensor."""
    batch: list[chunked.Stream] = []
    jobs: list[_Pending] = []
    owner: list[int] = []
    for meta, streams, dtype, numel in items:
        try:
            jobs.append(_prepare(meta, streams, dtype, numel, batch))
        except DECODE_ERRORS as exc:
            raise TensorError(str(meta.get("n")), str(exc)) from None
        owner += [len(jobs) - 1] * (len(batch) - len(owner))
    try:
        decoded = chunked.decode_many(batch)
    except chunked.StreamError as exc:
        raise TensorError(str(items[owner[exc.index]][0].get("n")), exc.problem) from None
    out = []
    for job in jobs:
        try:
            out.append(_finish(job, decoded))
        except DECODE_ERRORS as exc:
            raise TensorError(str(job.meta.get("n")), str(exc)) from None
    return out


def decode_tensor(meta: dict[str, Any], streams: list[memoryview], dtype: torch.dtype, numel: int) -> torch.Tensor:
    """Rebuild one tensor from its streams (see decode_tensors)."""
    return decode_tensors([(meta, streams, dtype, numel)])[0]
