"""Canonical Huffman coding, vectorised with numpy (no Python loop per symbol of the stream).

Code lengths come from Moffat and Katajainen's in-place Huffman algorithm (linear passes over the
alphabet sorted by count, at most a few hundred symbols), limited on request to `LIMIT` bits (the
code tree reshaped as JPEG does, so a decoding table indexed by the next `LIMIT` bits covers every code).
Codes are canonical, so a table is just the code length per symbol. Encoding places every code in
64-bit words at once (codes in one word never overlap, so an OR-reduction per word assembles them).

Decoding lives in `chunked.py` (a lookup table over independently decodable chunks); `decode_legacy`
is the decoder of format version 1 files, whose large streams carry no chunk table: it computes, for
every bit position, the length of the code that would start there, then follows the chain of code
starts from bit 0 by pointer doubling (log2(n) vectorised rounds, O(bits log n) work).
"""
from __future__ import annotations

from typing import Any

import numpy as np

MAX_LEN = 57          # codes must fit a 64-bit window; needs > 10^11 symbols to exceed, checked anyway
LIMIT = 15            # longest code the encoder writes: a lookup table of 2^15 entries, code-length tables in nibbles


class HuffmanError(ValueError):
    """A table or bit stream that cannot be decoded (corrupt data)."""


def code_lengths(counts: np.ndarray, limit: int = MAX_LEN) -> np.ndarray:
    """Prefix-code length per symbol (0 for symbols that never occur; a lone symbol gets 1 bit).

    Optimal (Huffman) when the longest code fits `limit` bits; otherwise the code tree is reshaped to fit
    (JPEG's adjustment), which costs a tiny fraction of a bit per symbol.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if not 1 <= limit <= MAX_LEN or np.count_nonzero(counts) > 2 ** limit:
        raise HuffmanError(f"{np.count_nonzero(counts)} symbols cannot have codes of at most {limit} bits")
    lengths = _huffman_lengths(counts)
    longest = int(lengths.max(initial=0))
    if longest <= limit:
        return lengths
    per_length = np.bincount(lengths, minlength=longest + 1).tolist()
    per_length[0] = 0
    for deep in range(longest, limit, -1):   # JPEG's Adjust_BITS (ITU T.81, K.3): a pair of the deepest
        while per_length[deep] > 0:          # codes goes one level up, a shallower code splits in two
            shallow = deep - 2
            while per_length[shallow] == 0:
                shallow -= 1
            per_length[deep] -= 2
            per_length[deep - 1] += 1
            per_length[shallow + 1] += 2
            per_length[shallow] -= 1
    used = np.flatnonzero(counts)
    limited = np.zeros_like(lengths)         # the most frequent symbols get the shortest codes
    limited[used[np.argsort(-counts[used], kind="stable")]] = np.repeat(np.arange(len(per_length)), per_length)
    return limited


def _huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Optimal code lengths: Moffat and Katajainen's in-place algorithm over the counts sorted ascending
    (three linear passes: parent pointers, internal depths, leaf depths)."""
    lengths = np.zeros(len(counts), dtype=np.int64)
    used = np.flatnonzero(counts)
    if len(used) <= 1:
        lengths[used] = 1
        return lengths
    order = used[np.argsort(counts[used], kind="stable")]
    a = counts[order].tolist()
    n = len(a)
    a[0] += a[1]
    root, leaf = 0, 2
    for nxt in range(1, n - 1):
        if leaf >= n or a[root] < a[leaf]:
            a[nxt], a[root] = a[root], nxt
            root += 1
        else:
            a[nxt] = a[leaf]
            leaf += 1
        if leaf >= n or (root < nxt and a[root] < a[leaf]):
            a[nxt] += a[root]
            a[root] = nxt
            root += 1
        else:
            a[nxt] += a[leaf]
            leaf += 1
    a[n - 2] = 0
    for nxt in range(n - 3, -1, -1):
        a[nxt] = a[a[nxt]] + 1
    available, depth, root, nxt = 1, 0, n - 2, n - 1
    while available > 0:
        internal = 0
        while root >= 0 and a[root] == depth:
            internal += 1
            root -= 1
        while available > internal:
            a[nxt] = depth
            nxt -= 1
            available -= 1
        available, depth = 2 * internal, depth + 1
    lengths[order] = a
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
    """Concatenated codes of `symbols`, MSB first, zero-padded to a whole byte.

    Each code, left-aligned in 64 bits, is shifted to its offset in the word holding its first bit, and
    codes never overlap, so OR-ing the codes that start in each word (adjacent, symbols being in order:
    `bitwise_or.reduceat`) builds the word; only a word's last code can cross into the next word. Short
    codes go two at a time (a table of code pairs), which halves the work.
    """
    symbols = np.asarray(symbols, dtype=np.intp)
    if symbols.size == 0:
        return b""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.max() > MAX_LEN:
        raise HuffmanError("code length out of range")
    wide = lengths.astype(np.uint64)
    codes = canonical_codes(lengths)
    if 2 * int(lengths.max()) <= MAX_LEN and symbols.size > 4 * (len(lengths) + 1) ** 2:
        wide, codes = np.append(wide, np.uint64(0)), np.append(codes, np.uint64(0))   # + "no symbol"
        wide, codes = wide[:, None] + wide[None, :], codes[:, None] << wide[None, :] | codes[None, :]
        pairs = symbols[0::2] * (len(lengths) + 1)
        pairs[:symbols.size // 2] += symbols[1::2]
        pairs[symbols.size // 2:] += len(lengths)
        symbols, wide, codes = pairs, wide.reshape(-1), codes.reshape(-1)
    return _place(symbols, np.where(wide > 0, codes << (np.uint64(64) - np.maximum(wide, np.uint64(1))), 0) | wide)


def _place(symbols: np.ndarray, entry: np.ndarray) -> bytes:
    """Write the codes of `symbols`; entry: each symbol's code left-aligned, its length in the low 6 bits."""
    packed = entry[symbols]
    low = np.uint64(0x3F)
    lens = packed & low
    packed ^= lens
    starts = np.cumsum(lens)
    total = int(starts[-1])
    starts -= lens
    offset = starts & np.uint64(63)
    first = np.concatenate([[0], np.flatnonzero(offset[1:] < offset[:-1]) + 1])   # codes ≤ 57 bits: no word skipped
    at = (starts[first] >> np.uint64(6)).astype(np.intp)
    words = np.zeros(total // 64 + 2, dtype=np.uint64)
    words[at] = np.bitwise_or.reduceat(packed >> offset, first)
    last = np.append(first[1:] - 1, symbols.size - 1)           # the tail of a word's last code, if it crosses
    words[at + 1] |= (packed[last] << (np.uint64(63) - offset[last])) << np.uint64(1)
    return words.astype(">u8").tobytes()[:(total + 7) // 8]


def table_size(lengths: np.ndarray) -> int:
    """len(table_bytes(lengths)) without building it."""
    used = np.flatnonzero(lengths)
    size = int(used[-1]) + 1 if used.size else 0
    return 2 + (size if size and int(np.max(lengths)) > 15 else (size + 1) // 2)


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


def decode_legacy(data: bytes | memoryview, n: int, lengths: np.ndarray) -> np.ndarray:
    """Decode `n` symbols of an unchunked stream; raises HuffmanError on a stream that does not decode cleanly."""
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
