"""Chunked canonical Huffman streams (format version 2): independently decodable chunks, decoded by table.

A stream of n symbols is cut into chunks of `CHUNK` symbols (the last may be shorter); its chunk table,
written after the code-length table, holds each chunk's length in bits, so every chunk's first bit is
known. Decoding then runs every chunk of every stream of a file side by side, one numpy step per
symbol of a chunk: each lane reads the 64 bits at its position, a lookup table indexed by the next
`maxlen` bits (at most `LUT_BITS`) gives the symbol and its code length, and the lane moves on.
A file's worth of streams takes `CHUNK` steps, whatever its size.

Chunk table (only when n > chunk size):  u16 chunk size S | u8 width w | u32 base | (C-1) w-bit values,
MSB first, each chunk's bit length minus base (C = ceil(n / S); the last chunk's length is what remains).
The encoder writes no table for streams of at most `SINGLE` symbols (a single chunk). A stream without
one is decoded the same way up to `CHUNK` symbols, by `huffman.decode_legacy` beyond (small streams,
version 1 files), which also takes codes longer than `LUT_BITS`; a code of one symbol needs no decoding.
Everything read is checked before it is used: chunk sizes within MIN_CHUNK..MAX_CHUNK (bounding the
memory per symbol and the steps), chunk lengths against the code lengths (S x shortest <= length <=
S x longest), the chunk ends against the data; after decoding, every symbol must be a code of its
table and each chunk must end exactly where the next begins, the last within the stream's final byte.
Streams are decoded in groups of at most `CELLS` lanes x steps.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .huffman import HuffmanError, canonical_codes, check_lengths, decode_legacy


class StreamError(HuffmanError):
    """A stream of a batch that does not decode: its position in the batch and the problem."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"stream {index}: {problem}")
        self.index, self.problem = index, problem


CHUNK = 256               # symbols per chunk written by the encoder
SINGLE = 2048             # streams up to this many symbols are written as one chunk (no table: a few
                          # bytes saved where they matter; decoded by the bit-parallel decoder, ~1 ms)
MIN_CHUNK = 64            # the least a reader accepts: bounds the lanes (memory) per symbol
MAX_CHUNK = 4096          # the most a reader accepts: bounds the decoding steps
MAX_ALPHABET = 2047       # symbols a lookup-table entry holds (11 bits, beside 5 of code length)
CELLS = 1 << 22           # lanes x steps decoded at once (a table entry each: 8 MiB)
LUT_BITS = 16             # the longest code the lookup table takes (the encoder writes at most huffman.LIMIT)
HEAD = struct.Struct("<HBI")


def chunk_table(symbols: np.ndarray, lengths: np.ndarray, chunk: int = CHUNK, single: int = SINGLE) -> bytes:
    """The chunk table of a stream (b"" when it is a single chunk: at most max(chunk, single) symbols)."""
    n = len(symbols)
    if n <= max(chunk, single):
        return b""
    bits = np.add.reduceat(np.asarray(lengths, np.int64)[symbols], np.arange(0, n, chunk))[:-1]
    base = int(bits.min())
    width = int(bits.max() - base).bit_length()
    return HEAD.pack(chunk, width, base) + _pack(bits - base, width)


def table_cost(n: int, lengths: np.ndarray, chunk: int = CHUNK) -> int:
    """Bytes of the chunk table of an n-symbol stream (estimated before encoding: width from the spread)."""
    if n <= max(chunk, SINGLE):
        return 0
    used = np.asarray(lengths)[np.asarray(lengths) > 0]
    spread = float(np.sqrt(chunk) * (used.max() - used.min()) / 2) if used.size else 0.0
    return HEAD.size + ((n - 1) // chunk * (int(4 * spread).bit_length() + 1) + 7) // 8


def _pack(values: np.ndarray, width: int) -> bytes:
    """Fixed-width big-endian bit packing of non-negative values below 2^width."""
    if width == 0 or values.size == 0:
        return b""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    bits = ((values.astype(np.uint64)[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.reshape(-1)).tobytes()


def _unpack(buf: bytes, count: int, width: int) -> np.ndarray:
    """Inverse of `_pack`: each value from the 64 bits at its first byte (width <= 32 < 64 - 7)."""
    if width == 0:
        return np.zeros(count, np.int64)
    raw = np.frombuffer(buf + bytes(8), np.uint8)
    words = np.ndarray(shape=(len(buf),), dtype=">u8", buffer=raw, strides=(1,))
    at = np.arange(count, dtype=np.uint64) * np.uint64(width)
    window = words[(at >> np.uint64(3)).astype(np.intp)].astype(np.uint64) << (at & np.uint64(7))
    values: np.ndarray = (window >> np.uint64(64 - width)).astype(np.int64)
    return values


def read_chunks(buf: bytes | memoryview, n: int, lengths: np.ndarray, nbytes: int) -> tuple[np.ndarray, int] | None:
    """(chunk start bits, C + 1 values, the last the stream's end; symbols per chunk) from a chunk table
    (`buf`; empty: None, a single chunk). `nbytes` is the size of the stream's data."""
    if len(buf) == 0:
        return None
    if len(buf) < HEAD.size:
        raise HuffmanError("truncated chunk table")
    chunk, width, base = HEAD.unpack_from(buf)
    if not MIN_CHUNK <= chunk <= MAX_CHUNK or width > 32:
        raise HuffmanError(f"chunk table: chunks of {chunk} symbols, {width}-bit lengths")
    if n <= chunk:
        raise HuffmanError(f"chunk table for a single chunk ({n} symbols, chunks of {chunk})")
    count = (n - 1) // chunk                        # chunks before the last
    if len(buf) != HEAD.size + (count * width + 7) // 8:
        raise HuffmanError("chunk table length does not match its stream")
    bits = base + _unpack(bytes(buf[HEAD.size:]), count, width)
    used = np.asarray(lengths)[np.asarray(lengths) > 0]
    shortest, longest = (int(used.min()), int(used.max())) if used.size else (0, 0)
    if bits.min() < chunk * shortest or bits.max() > chunk * longest:
        raise HuffmanError("chunk lengths do not fit their code lengths")
    starts = np.concatenate([[0], np.cumsum(bits)])
    last = n - count * chunk
    if starts[-1] + last * shortest > 8 * nbytes:
        raise HuffmanError("chunks run past the end of the stream")
    return np.append(starts, 8 * nbytes), chunk


@dataclass
class Stream:
    data: bytes | memoryview
    n: int
    lengths: np.ndarray
    starts: np.ndarray | None = None                # from read_chunks; None: a single chunk
    chunk: int = 0                                  # symbols per chunk (all but the last)


def decode(data: bytes | memoryview, n: int, lengths: np.ndarray, table: bytes | memoryview = b"") -> np.ndarray:
    """Decode `n` symbols of one stream with its chunk table (b"" for none)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    chunks = read_chunks(table, n, lengths, len(data))
    return decode_many([Stream(data, n, lengths, *(chunks or (None, 0)))])[0]


def decode_many(streams: list[Stream]) -> list[np.ndarray]:
    """Decode several streams at once (all their chunks side by side); HuffmanError names the stream."""
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(streams)
    batch = []
    for i, s in enumerate(streams):
        if s.n == 0:
            continue
        try:
            check_lengths(s.lengths)
        except HuffmanError as exc:
            raise StreamError(i, str(exc)) from None
        if not s.lengths.any():
            raise StreamError(i, "empty code table for a non-empty stream")
        if s.n > 8 * len(s.data):
            raise StreamError(i, f"{s.n} symbols cannot fit in {len(s.data)} bytes")
        if s.starts is None and s.n > CHUNK and np.count_nonzero(s.lengths) == 1:
            out[i] = _one_symbol(i, s)
        elif int(s.lengths.max()) > LUT_BITS or len(s.lengths) > MAX_ALPHABET or (s.starts is None and s.n > CHUNK):
            out[i] = _legacy(i, s)
        else:
            batch.append(i)
    for group in _groups(batch, streams):
        for i, symbols in zip(group, _lanes([streams[i] for i in group], group)):
            out[i] = symbols
    return out


def _groups(batch: list[int], streams: list[Stream]) -> list[list[int]]:
    """Streams decoded together, by chunk size, each group's lanes x steps within `CELLS` (one stream alone
    may exceed it: its cells are its symbols plus the last chunk's shortfall)."""
    steps = {i: streams[i].chunk or streams[i].n for i in batch}
    groups: list[list[int]] = []
    lanes = 0
    for i in sorted(batch, key=steps.__getitem__):
        chunks = -(-streams[i].n // steps[i])
        if not groups or (lanes + chunks) * steps[i] > CELLS:
            groups.append([])
            lanes = 0
        groups[-1].append(i)
        lanes += chunks
    return groups


def _one_symbol(i: int, s: Stream) -> np.ndarray:
    """A code of one symbol (a constant tensor's indices): n times its code, all zeros."""
    symbol = int(np.flatnonzero(s.lengths)[0])
    if len(s.data) != (s.n * int(s.lengths[symbol]) + 7) // 8 or any(s.data):
        raise StreamError(i, "bits that are no code of its table")
    return np.full(s.n, symbol, dtype=np.uint16)


def _legacy(i: int, s: Stream) -> np.ndarray:
    """Streams the lookup table cannot take: the bit-parallel decoder, then the chunk table checked."""
    try:
        symbols = decode_legacy(s.data, s.n, s.lengths)
    except HuffmanError as exc:
        raise StreamError(i, str(exc)) from None
    if s.starts is not None:
        ends = np.cumsum(s.lengths[symbols])[s.chunk - 1::s.chunk][:len(s.starts) - 2]
        if not np.array_equal(ends, s.starts[1:-1]):
            raise StreamError(i, "chunk table does not match the stream")
    return symbols


def _lut(lengths: np.ndarray, width: int) -> np.ndarray:
    """Entry (symbol << 5 | code length) for every `width`-bit prefix; where no code starts so, a symbol
    past the alphabet (refused after decoding) and a length of 1 bit (the lane moves on)."""
    codes = canonical_codes(lengths)
    lut = np.full(1 << width, len(lengths) << 5 | 1, dtype=np.uint16)
    for sym in np.flatnonzero(lengths):              # alphabet-sized loop, each a slice fill
        length = int(lengths[sym])
        lo = int(codes[sym]) << (width - length)
        lut[lo:lo + (1 << (width - length))] = sym << 5 | length
    return lut


def _lanes(streams: list[Stream], names: list[int]) -> list[np.ndarray]:
    luts, bases, starts, counts, lane_lut, shifts, offset, table_at = [], [], [], [], [], [], 0, 0
    for s in streams:
        width = int(s.lengths.max())
        luts.append(_lut(s.lengths, width))
        chunk_starts = np.zeros(1, np.int64) if s.starts is None else s.starts[:-1]
        chunk = s.n if s.starts is None else s.chunk
        sizes = np.full(len(chunk_starts), chunk, np.int64)
        sizes[-1] = s.n - chunk * (len(chunk_starts) - 1)
        bases.append(offset)
        starts.append(8 * offset + chunk_starts)
        counts.append(sizes)
        lane_lut.append(np.full(len(sizes), table_at, np.uint64))
        shifts.append(np.full(len(sizes), 64 - width, np.uint64))
        offset += len(s.data)
        table_at += len(luts[-1])
    steps = int(max(int(c.max()) for c in counts))
    buf = np.frombuffer(b"".join([bytes(s.data) for s in streams]) + bytes(steps * LUT_BITS // 8 + 16), np.uint8)
    words = np.ndarray(shape=(len(buf) - 8,), dtype=">u8", buffer=buf, strides=(1,))   # 8 bytes at every byte
    lut, pos = np.concatenate(luts), np.concatenate(starts).astype(np.uint64)
    at, shift = np.concatenate(lane_lut), np.concatenate(shifts)
    entries = np.empty((steps, len(pos)), dtype=np.uint16)
    index, window = np.empty_like(pos), np.empty_like(pos)
    three, seven, low = np.uint64(3), np.uint64(7), np.uint16(0x1F)
    for step in range(steps):                       # one vectorised step per symbol of a chunk
        np.right_shift(pos, three, out=index)
        gathered = words[index]
        np.bitwise_and(pos, seven, out=index)
        np.left_shift(gathered, index, out=window)
        np.right_shift(window, shift, out=window)
        np.add(window, at, out=window)
        row = entries[step]
        lut.take(window, out=row)
        pos += row & low
    return _check(streams, names, entries, pos, np.concatenate(starts), np.concatenate(counts), bases)


def _check(streams: list[Stream], names: list[int], entries: np.ndarray, pos: np.ndarray, starts: np.ndarray,
           counts: np.ndarray, bases: list[int]) -> list[np.ndarray]:
    """Every symbol a code of its table, every chunk ending where the next begins (the last in its final byte)."""
    ends = pos.astype(np.int64)
    short = np.flatnonzero(counts < entries.shape[0])         # lanes that ran past their last symbol
    if short.size:
        inside = np.arange(entries.shape[0])[:, None] < counts[short][None, :]
        ends[short] = starts[short] + np.where(inside, entries[:, short] & 0x1F, 0).sum(0, dtype=np.int64)
    out, lane = [], 0
    for s, name, base in zip(streams, names, bases):
        lanes = slice(lane, lane + (1 if s.starts is None else len(s.starts) - 1))
        lane = lanes.stop
        stop = ends[lanes] - 8 * base
        if s.starts is not None and not np.array_equal(stop[:-1], s.starts[1:-1]):
            raise StreamError(name, "a chunk does not end where the next begins")
        if not 8 * len(s.data) - 8 < stop[-1] <= 8 * len(s.data):
            raise StreamError(name, f"{stop[-1]} bits decoded from a {len(s.data)}-byte stream")
        rows = int(counts[lanes][0])                # lane-major, only the last lane short: the first n are real
        symbols = entries[:rows, lanes].T.reshape(-1)[:s.n] >> 5
        if int(symbols.max()) >= len(s.lengths):
            raise StreamError(name, "bits that are no code of its table")
        out.append(symbols)
    return out
