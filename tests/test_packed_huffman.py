"""Canonical Huffman coding: optimal code lengths, vectorised round trip, table serialisation."""
import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.packed import huffman


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


@settings(max_examples=100, deadline=None)
@given(alphabet=st.integers(1, 260), n=st.integers(0, 3000), skew=st.floats(0.05, 5.0), seed=st.integers(0, 2**16))
def test_encode_decode_round_trip(alphabet, n, skew, seed):
    rng = np.random.default_rng(seed)
    symbols = rng.choice(alphabet, size=n, p=rng.dirichlet(np.full(alphabet, skew)))
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
    data = huffman.encode(symbols, lengths)
    assert len(data) == (huffman.encoded_bits(np.bincount(symbols, minlength=alphabet), lengths) + 7) // 8
    table, end = huffman.read_table(huffman.table_bytes(lengths))
    assert end == len(huffman.table_bytes(lengths))
    assert np.array_equal(huffman.decode(data, n, table), symbols)


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
    assert np.array_equal(huffman.decode(huffman.encode(symbols, lengths), len(symbols), lengths), symbols)


def test_damaged_streams_and_tables_raise():
    symbols = np.arange(100) % 7
    lengths = huffman.code_lengths(np.bincount(symbols))
    data = huffman.encode(symbols, lengths)
    with pytest.raises(huffman.HuffmanError):
        huffman.decode(data[: len(data) // 3], len(symbols), lengths)
    with pytest.raises(huffman.HuffmanError):
        huffman.decode(data, 10**9, lengths)                              # more symbols than bits
    with pytest.raises(huffman.HuffmanError):
        huffman.decode(data, 5, np.array([1, 1, 1]))                      # not a prefix code
    with pytest.raises(huffman.HuffmanError):
        huffman.read_table(huffman.table_bytes(lengths)[:-1])
