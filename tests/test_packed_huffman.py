"""Canonical Huffman coding: optimal and length-limited code lengths, chunked table-driven decoding (and the
version-1 decoder), table serialisation, hostile chunk tables."""
import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.packed import chunked, huffman


def reference_total_bits(counts) -> int:
    """Cost of an optimal prefix code = sum of the weights of all merged (internal) nodes."""
    heap = [int(c) for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]            # a lone symbol still needs one bit
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=300))
def test_code_lengths_are_optimal(counts):
    counts = np.array(counts)
    lengths = huffman.code_lengths(counts)
    assert ((lengths > 0) == (counts > 0)).all()
    assert huffman.encoded_bits(counts, lengths) == (reference_total_bits(counts) if counts.any() else 0)
    used = lengths[lengths > 0]
    if used.size >= 2:
        assert np.sum(np.ldexp(1.0, -used)) == pytest.approx(1.0)     # complete prefix code
    if counts.any():
        assert huffman.encoded_bits(counts, lengths) >= huffman.entropy_bits(counts) - 1e-6
        assert huffman.encoded_bits(counts, lengths) <= huffman.entropy_bits(counts) + counts.sum()


def _stream(symbols, alphabet, limit=huffman.LIMIT, chunk=chunked.CHUNK, single=0):
    counts = np.bincount(symbols, minlength=alphabet)
    lengths = huffman.code_lengths(counts, limit)
    data = huffman.encode(symbols, lengths)
    assert len(data) == (huffman.encoded_bits(counts, lengths) + 7) // 8
    return lengths, data, chunked.chunk_table(symbols, lengths, chunk, single)


@settings(max_examples=100, deadline=None)
@given(alphabet=st.integers(1, 260), n=st.integers(0, 3000), skew=st.floats(0.05, 5.0), seed=st.integers(0, 2**16),
       chunk=st.sampled_from([chunked.MIN_CHUNK, 100, chunked.CHUNK, chunked.MAX_CHUNK]))
def test_encode_decode_round_trip(alphabet, n, skew, seed, chunk):
    rng = np.random.default_rng(seed)
    symbols = rng.choice(alphabet, size=n, p=rng.dirichlet(np.full(alphabet, skew)))
    lengths, data, chunks = _stream(symbols, alphabet, chunk=chunk)
    assert lengths.max(initial=0) <= huffman.LIMIT
    assert (len(chunks) > 0) == (n > chunk)
    if n <= chunked.SINGLE:                                                 # what the encoder writes: one chunk
        assert chunked.chunk_table(symbols, lengths, chunk) == b""
        assert np.array_equal(chunked.decode(data, n, lengths), symbols)
    table, end = huffman.read_table(huffman.table_bytes(lengths) + chunks)
    assert np.array_equal(chunked.decode(data, n, table, (huffman.table_bytes(lengths) + chunks)[end:]), symbols)
    assert np.array_equal(huffman.decode_legacy(data, n, table), symbols)      # version 1 streams: same bits


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 2000), min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_many_streams_decode_side_by_side(sizes, seed):
    """Streams of different alphabets, code widths (codes past the lookup table's 16 bits too) and chunk layouts
    in one batch, each back exactly."""
    rng = np.random.default_rng(seed)
    batch, want = [], []
    for n in sizes:
        alphabet = int(rng.integers(1, 300))
        symbols = rng.choice(alphabet, size=n, p=rng.dirichlet(np.full(alphabet, float(rng.uniform(0.05, 3)))))
        lengths, data, table = _stream(symbols, alphabet, limit=int(rng.choice([huffman.LIMIT, 16, huffman.MAX_LEN])),
                                       chunk=int(rng.choice([chunked.MIN_CHUNK, 100, chunked.CHUNK])))
        batch.append(chunked.Stream(data, n, lengths, *(chunked.read_chunks(table, n, lengths, len(data)) or (None, 0))))
        want.append(symbols)
    for got, expected in zip(chunked.decode_many(batch), want):
        assert np.array_equal(got, expected)


def test_code_lengths_limited_to_the_lookup_table():
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    counts = np.array(fib)
    assert huffman.code_lengths(counts).max() == 29
    limited = huffman.code_lengths(counts, huffman.LIMIT)
    assert limited.max() == huffman.LIMIT and np.sum(np.ldexp(1.0, -limited)) <= 1.0
    optimal = huffman.encoded_bits(counts, huffman.code_lengths(counts))
    assert optimal <= huffman.encoded_bits(counts, limited) <= optimal * 1.01
    with pytest.raises(huffman.HuffmanError):
        huffman.code_lengths(np.ones(300), 8)                             # 300 symbols need 9 bits


def test_long_codes_use_a_wide_table():
    fib = [1, 1]
    while len(fib) < 24:
        fib.append(fib[-1] + fib[-2])
    counts = np.array(fib)
    lengths = huffman.code_lengths(counts)
    assert lengths.max() == 23
    blob = huffman.table_bytes(lengths)
    assert blob[1] & 0x80 and len(blob) == 2 + len(counts)
    symbols = np.repeat(np.arange(len(counts)), counts)[::-1].copy()
    data = huffman.encode(symbols, lengths)
    assert np.array_equal(huffman.decode_legacy(data, len(symbols), lengths), symbols)
    # codes longer than the lookup table: decoded the slow way, the chunk table still checked
    assert np.array_equal(chunked.decode(data, len(symbols), lengths, chunked.chunk_table(symbols, lengths, single=0)),
                          symbols)
    bad = bytearray(chunked.chunk_table(symbols, lengths, single=0))
    bad[-1] ^= 0x01
    with pytest.raises(huffman.HuffmanError):
        chunked.decode(data, len(symbols), lengths, bytes(bad))


def test_damaged_streams_and_tables_raise():
    symbols = np.arange(100) % 7
    lengths = huffman.code_lengths(np.bincount(symbols))
    data = huffman.encode(symbols, lengths)
    for decode in (huffman.decode_legacy, chunked.decode):
        with pytest.raises(huffman.HuffmanError):
            decode(data[: len(data) // 3], len(symbols), lengths)
        with pytest.raises(huffman.HuffmanError):
            decode(data, 10**9, lengths)                                   # more symbols than bits
        with pytest.raises(huffman.HuffmanError):
            decode(data, 5, np.array([1, 1, 1]))                           # not a prefix code
    with pytest.raises(huffman.HuffmanError):
        chunked.decode(data + b"\0", len(symbols), lengths)               # bytes left over
    with pytest.raises(huffman.HuffmanError):
        huffman.read_table(huffman.table_bytes(lengths)[:-1])
    lone = huffman.code_lengths(np.array([0, 5]))                          # one symbol: code "0"; "1" is no code
    with pytest.raises(huffman.HuffmanError, match="no code"):
        chunked.decode(b"\x40", 3, lone)
    constant = np.ones(1000, dtype=np.int64)                               # beyond a chunk: no decoding needed
    assert np.array_equal(chunked.decode(huffman.encode(constant, lone), 1000, lone), constant)
    for bad in (bytes(124), bytes(126), bytes(124) + b"\x01"):             # short, long, a 1 bit
        with pytest.raises(huffman.HuffmanError):
            chunked.decode(bad, 1000, lone)


def _big_stream(n=5000, alphabet=20, seed=0):
    rng = np.random.default_rng(seed)
    symbols = rng.choice(alphabet, size=n, p=rng.dirichlet(np.full(alphabet, 0.5)))
    return (symbols, *_stream(symbols, alphabet))


def _table(chunk, width, base, values=b""):
    return chunked.HEAD.pack(chunk, width, base) + values


def test_hostile_chunk_tables_are_refused_not_crashed():
    symbols, lengths, data, good = _big_stream()
    count = (len(symbols) - 1) // chunked.CHUNK
    _, width, base = chunked.HEAD.unpack_from(good)
    packed = good[chunked.HEAD.size:]
    cases = {
        "truncated head": good[:5],
        "truncated values": good[:-1],
        "a byte too many": good + b"\0",
        "chunks of 0 symbols": _table(0, width, base, packed),
        "chunks under the reader's bound": _table(chunked.MIN_CHUNK - 1, width, base, packed),
        "chunks past the reader's bound": _table(chunked.MAX_CHUNK + 1, width, base, packed),
        "64-bit lengths": _table(chunked.CHUNK, 64, base, packed),
        "chunk lengths overflowing": _table(chunked.CHUNK, 32, 2**32 - 1, b"\xff" * (4 * count)),
        "chunks shorter than their codes": _table(chunked.CHUNK, 0, 1),
        "offsets out of range": _table(chunked.CHUNK, 0, chunked.CHUNK * int(lengths.max())),
        "chunks of another size": _table(chunked.CHUNK // 2, width, base, packed),
        "a table for one chunk": _table(len(symbols) + 1, 0, 0),
        "a shifted offset": good[:-2] + bytes([good[-2] ^ 0x10]) + good[-1:],
    }
    for label, table in cases.items():
        with pytest.raises(huffman.HuffmanError):
            chunked.decode(data, len(symbols), lengths, table)
            pytest.fail(f"{label}: accepted")
    assert np.array_equal(chunked.decode(data, len(symbols), lengths, good), symbols)


def test_chunks_that_disagree_with_their_bits_are_refused():
    symbols, lengths, data, table = _big_stream(seed=1)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF                      # the table's offsets stay: the chunk no longer ends there
    with pytest.raises(huffman.HuffmanError):
        chunked.decode(bytes(flipped), len(symbols), lengths, table)
    for n in (len(symbols) - 300, len(symbols) + 300):   # a count that does not match the table or the bits
        with pytest.raises(huffman.HuffmanError):
            chunked.decode(data, n, lengths, table)
