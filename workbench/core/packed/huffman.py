"""Canonical Huffman coding, vectorised with numpy (no Python loop per symbol of the stream).

Code lengths come from the classic merge of the two lightest nodes (heapq over the alphabet, which is
at most a few hundred symbols). Codes are canonical, so a table is just the code length per symbol.
Encoding scatters each code's bits with one numpy pass per bit of the longest code. Decoding computes,
for every bit position, the length of the code that would start there (canonical codes: compare the
next `l` bits with the first code of length `l`), then follows the chain of code starts from bit 0
by pointer doubling: log2(n) vectorised rounds.
"""
from __future__ import annotations

import heapq
from typing import Any

import numpy as np

MAX_LEN = 57          # codes must fit a 64-bit window; needs > 10^11 symbols to exceed, checked anyway


class HuffmanError(ValueError):
    """A table or bit stream that cannot be decoded (corrupt data)."""


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """Optimal prefix-code length per symbol (0 for symbols that never occur; a lone symbol gets 1 bit)."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.int64)
    used = np.flatnonzero(counts)
    if len(used) == 1:
        lengths[used] = 1
    if len(used) <= 1:
        return lengths
    heap = [(int(counts[s]), i) for i, s in enumerate(used)]
    heapq.heapify(heap)
    parent = list(range(2 * len(used) - 1))
    node = len(used)
    while len(heap) > 1:
        wa, a = heapq.heappop(heap)
        wb, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (wa + wb, node))
        node += 1
    depth = [0] * node
    for i in range(node - 2, -1, -1):        # parents are created after their children
        depth[i] = depth[parent[i]] + 1
    lengths[used] = depth[:len(used)]
    if lengths.max() > MAX_LEN:
        raise HuffmanError(f"code longer than {MAX_LEN} bits")
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code values (uint64) for the given lengths: shorter codes first, then by symbol."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(len(lengths), dtype=np.uint64)
    order = np.lexsort((np.arange(len(lengths)), lengths))
    order = order[lengths[order] > 0]
    code, prev = 0, 0
    for s in order:                          # alphabet-sized loop
        code <<= int(lengths[s]) - prev
        prev = int(lengths[s])
        codes[s] = code
        code += 1
    return codes


def check_lengths(lengths: np.ndarray) -> None:
    """A valid table: lengths within bounds and a prefix code (Kraft sum at most 1)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > MAX_LEN):
        raise HuffmanError("code length out of range")
    used = lengths[lengths > 0]
    if used.size and np.sum(np.ldexp(1.0, -used)) > 1.0 + 1e-12:
        raise HuffmanError("code lengths do not form a prefix code")


def table_bytes(lengths: np.ndarray) -> bytes:
    """Serialise a table: alphabet size (2 bytes), then one length per symbol as nibbles (or bytes if > 15)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    used = np.flatnonzero(lengths)
    size = int(used[-1]) + 1 if used.size else 0
    lens = lengths[:size].astype(np.uint8)
    wide = bool(size and lens.max() > 15)
    head = np.array([size & 0xFF, (size >> 8) & 0x7F | (0x80 if wide else 0)], dtype=np.uint8).tobytes()
    if wide:
        return head + lens.tobytes()
    padded = np.concatenate([lens, np.zeros(size % 2, np.uint8)])
    nibbles: bytes = (padded[0::2] << 4 | padded[1::2]).astype(np.uint8).tobytes()
    return head + nibbles


def read_table(buf: bytes | memoryview, offset: int = 0) -> tuple[np.ndarray, int]:
    """Inverse of `table_bytes`: (lengths, offset after the table)."""
    if offset + 2 > len(buf):
        raise HuffmanError("truncated code table")
    lo, hi = buf[offset], buf[offset + 1]
    size, wide = lo | (hi & 0x7F) << 8, bool(hi & 0x80)
    nbytes = size if wide else (size + 1) // 2
    end = offset + 2 + nbytes
    if end > len(buf):
        raise HuffmanError("truncated code table")
    raw = np.frombuffer(bytes(buf[offset + 2:end]), dtype=np.uint8)
    if wide:
        lengths = raw.astype(np.int64)
    else:
        lengths = np.stack([raw >> 4, raw & 0x0F], axis=1).reshape(-1)[:size].astype(np.int64)
    check_lengths(lengths)
    return lengths, end


def encoded_bits(counts: np.ndarray, lengths: np.ndarray) -> int:
    return int(np.dot(np.asarray(counts, np.int64), np.asarray(lengths, np.int64)[:len(counts)]))


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon bound: n * H(p) bits for a stream with these symbol counts."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    n = counts.sum()
    return max(0.0, float(-(counts * np.log2(counts / n)).sum())) if n else 0.0


def encode(symbols: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenated codes of `symbols`, MSB first, zero-padded to a whole byte."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size == 0:
        return b""
    lens = np.asarray(lengths, dtype=np.int64)[symbols]
    codes = canonical_codes(lengths)[symbols]
    ends = np.cumsum(lens)
    starts = ends - lens
    bits = np.zeros(int(ends[-1]), dtype=np.uint8)
    for j in range(int(lens.max())):         # one pass per bit of the longest code
        sel = lens > j
        shift = (lens[sel] - 1 - j).astype(np.uint64)
        bits[starts[sel] + j] = ((codes[sel] >> shift) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits).tobytes()


def _canonical_tables(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(count, first code, index of the first code in canonical order) per length, and symbols in that order."""
    maxlen = int(lengths.max())
    counts = np.bincount(lengths, minlength=maxlen + 1)
    counts[0] = 0
    first = np.zeros(maxlen + 1, dtype=np.int64)
    code = 0
    for length in range(2, maxlen + 1):
        code = (code + int(counts[length - 1])) << 1
        first[length] = code
    base = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.lexsort((np.arange(len(lengths)), lengths))
    return counts, first, base, order[lengths[order] > 0]


def _code_length_at(bits: np.ndarray, nbits: int, lengths: np.ndarray) -> np.ndarray:
    """For every bit position, the length of the code starting there (0 where none matches)."""
    maxlen = int(lengths.max())
    counts, first, _, _ = _canonical_tables(lengths)
    out = np.zeros(nbits, dtype=np.int8)
    block = 1 << 20
    for lo in range(0, nbits, block):
        hi = min(nbits, lo + block)
        window = np.zeros(hi - lo, dtype=np.uint64)
        for j in range(maxlen):
            window = (window << np.uint64(1)) | bits[lo + j:hi + j].astype(np.uint64)
        found = np.zeros(hi - lo, dtype=np.int8)
        for length in range(maxlen, 0, -1):            # the shortest match wins
            if counts[length] == 0:
                continue
            prefix = (window >> np.uint64(maxlen - length)).astype(np.int64) - first[length]
            found[(prefix >= 0) & (prefix < counts[length])] = length
        out[lo:hi] = found
    return out


def decode(data: bytes | memoryview, n: int, lengths: np.ndarray) -> np.ndarray:
    """Decode `n` symbols; raises HuffmanError on a stream that does not decode cleanly."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    check_lengths(lengths)
    if not lengths.any():
        raise HuffmanError("empty code table for a non-empty stream")
    if n > 8 * len(data):
        raise HuffmanError(f"{n} symbols cannot fit in {len(data)} bytes")
    nbits = 8 * len(data)
    maxlen = int(lengths.max())
    bits = np.concatenate([np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8)), np.zeros(maxlen, np.uint8)])
    step = _code_length_at(bits, nbits, lengths)
    index: type[np.signedinteger[Any]] = np.int32 if nbits < 2**31 - 64 else np.int64
    nxt = np.arange(nbits + 1, dtype=index)
    nxt[:nbits] += step                                # where the next code starts
    nxt[:nbits][step == 0] = nbits                     # no code here: fall into the sink
    nxt = np.minimum(nxt, nbits)
    starts = np.zeros(n, dtype=index)
    order = np.arange(n)
    k = 0
    while (1 << k) < n:                                # starts[i] = nxt^i(0) by pointer doubling
        sel = ((order >> k) & 1).astype(bool)
        starts[sel] = nxt[starts[sel]]
        nxt = nxt[nxt]
        k += 1
    if starts[-1] >= nbits or (step[np.minimum(starts, nbits - 1)] == 0).any():
        raise HuffmanError("bit stream ends before all symbols are decoded")
    if int(starts[-1]) + int(step[starts[-1]]) > nbits:
        raise HuffmanError("last code runs past the end of the stream")
    return _symbols_at(bits, starts.astype(np.int64), step, lengths)


def _symbols_at(bits: np.ndarray, starts: np.ndarray, step: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    lens = step[starts].astype(np.int64)
    values = np.zeros(len(starts), dtype=np.int64)
    for j in range(int(lens.max())):
        sel = lens > j
        values[sel] = (values[sel] << 1) | bits[starts[sel] + j]
    _, first, base, symbols = _canonical_tables(lengths)
    decoded: np.ndarray = symbols[base[lens] + values - first[lens]]
    return decoded
