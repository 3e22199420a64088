"""Relative indices for sparse tensors (Deep Compression, section 3).

Each stored entry carries the number of zeros skipped since the previous entry (its *gap*), in
`gap_bits` bits, so the largest gap is 2^gap_bits - 1. A longer run of zeros is bridged with filler
entries: a filler sits 2^gap_bits positions after the previous entry and stores a zero value. All of
it is vectorised: fillers come from `np.repeat`, positions back from a cumulative sum.
"""
from __future__ import annotations

import numpy as np

GAP_BITS = range(4, 9)


def to_gaps(positions: np.ndarray, gap_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted flat positions of the non-zeros -> (gap per entry, True where the entry is real, not a filler)."""
    positions = np.asarray(positions, dtype=np.int64)
    span = 1 << gap_bits
    if positions.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    gaps = np.diff(positions, prepend=-1) - 1
    fillers = gaps // span
    rest = gaps - fillers * span
    total = int(positions.size + fillers.sum())
    real_at = np.cumsum(fillers + 1) - 1
    out = np.full(total, span - 1, dtype=np.int64)
    out[real_at] = rest
    real = np.zeros(total, dtype=bool)
    real[real_at] = True
    return out, real


def from_gaps(gaps: np.ndarray) -> np.ndarray:
    """Gap stream -> the flat position of every entry (fillers included)."""
    return np.cumsum(np.asarray(gaps, dtype=np.int64) + 1) - 1


def entry_count(positions: np.ndarray, gap_bits: int) -> int:
    """How many entries (real + fillers) `to_gaps` would produce, without building them."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        return 0
    gaps = np.diff(positions, prepend=-1) - 1
    return int(positions.size + (gaps >> gap_bits).sum())
