"""Rebuild sample_models/digits.npz from the UCI optical digits file shipped by scikit-learn.

The 1,797 8x8 images (pixels 0..16) and labels are stored as uint8, together with a fixed,
stratified 80/20 train/test split (seed 0), so every run of workbench sees the same split.

    python scripts/make_digits.py path/to/sklearn/datasets/data/digits.csv.gz
"""
import gzip
import sys
from pathlib import Path

import numpy as np


def stratified_split(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train)), np.sort(np.array(test))


def main(src: str) -> None:
    with gzip.open(src, "rt") as fh:
        raw = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    images = raw[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    labels = raw[:, 64].astype(np.uint8)
    train, test = stratified_split(labels)
    out = Path(__file__).resolve().parents[1] / "sample_models" / "digits.npz"
    np.savez_compressed(out, images=images, labels=labels, train=train.astype(np.int16), test=test.astype(np.int16))
    print(f"{out}: {len(images)} images, {len(train)} train / {len(test)} test")


if __name__ == "__main__":
    main(sys.argv[1])
