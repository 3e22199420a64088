"""Relative indices for sparse tensors (Deep Compression, section 3).

Each stored entry carries the number of zeros skipped since the previous entry (its *gap*), in
`gap_bits` bits, so the largest gap is 2^gap_bits - 1. A longer run of zeros is bridged with filler
entries: a filler sits 2^gap_bits positions after the previous entry and stores a zero value. All of
it is vectorised: fillers come from `np.repeat`, positions back from a cumulative sum.
"""
from __future__ import annotations

import numpy as np

GAP_BITS = range(4, 9)


def to_gaps(positions: np.ndarray, gap_bits: int, skips: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted flat positions of the non-zeros -> (gap per entry, True where the entry is real, not a filler).
    `skips`, the zeros before each position, when the caller has them already."""
    positions = np.asarray(positions, dtype=np.int64)
    span = 1 << gap_bits
    if positions.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    gaps = np.diff(positions, prepend=-1) - 1 if skips is None else skips
    fillers = gaps >> gap_bits
    if not fillers.any():
        return gaps, np.ones(gaps.size, dtype=bool)
    real_at = np.cumsum(fillers + 1) - 1
    out = np.full(int(real_at[-1]) + 1, span - 1, dtype=np.int64)
    out[real_at] = gaps & (span - 1)
    real = np.zeros(out.size, dtype=bool)
    real[real_at] = True
    return out, real


def from_gaps(gaps: np.ndarray) -> np.ndarray:
    """Gap stream -> the flat position of every entry (fillers included)."""
    positions = np.cumsum(np.asarray(gaps) + 1, dtype=np.int64)
    positions -= 1
    return positions


def gap_counts(gap_histogram: np.ndarray, gap_bits: int) -> np.ndarray:
    """How often each gap symbol occurs (fillers included), from the histogram of the zeros skipped
    before each entry, without building the stream: a skip of g leaves g mod 2^bits and g >> bits fillers."""
    span = 1 << gap_bits
    skips = np.arange(len(gap_histogram))
    counts = np.bincount(skips & (span - 1), weights=gap_histogram, minlength=span).astype(np.int64)
    counts[span - 1] += int(np.dot(gap_histogram, skips >> gap_bits))
    return counts
