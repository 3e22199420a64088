"""The three splits of a data set and the loaders over them.

Every data spec yields train, val and test, disjoint. Val is carved from train with the seed
(`val_fraction`) unless the data has its own validation split; calibration batches come from train
(without augmentation). Decisions read val; the report reads test.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .. import memory_budget
from .preprocess import Preprocessing
from .settings import DataSettings

Batch = tuple[torch.Tensor, torch.Tensor]
SPLITS = ("train", "val", "test")
CALIB_SIZE = 256
BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def carve(train: torch.Tensor, fraction: float, seed: int, subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) index tensors: `fraction` of `train` goes to val, picked with `seed`; `subset` keeps that many
    of the rest for training."""
    order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))]
    n_val = int(round(fraction * len(order))) if fraction > 0 else 0
    n_val = min(n_val, max(0, len(order) - 1))
    rest = order[n_val:]
    if subset is not None:
        rest = rest[:subset]
    return rest.sort().values, order[:n_val].sort().values


class TensorBatches:
    """Mini-batches sliced from whole tensors; reshuffled each pass when `shuffle`. `transform(x, generator)` runs
    on a whole batch (normalising, resizing, augmenting), so no Python code runs per sample. `shard=(rank, world)`
    keeps every world-th sample (the same permutation on every rank, so shards are disjoint)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = False,
                 transform: BatchTransform | None = None, seed: int = 0, shard: tuple[int, int] | None = None) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.seed = seed
        self.shard = shard
        self.generator = torch.Generator().manual_seed(seed)

    def _count(self) -> int:
        n = len(self.x)
        return n if self.shard is None else len(range(self.shard[0], n, self.shard[1]))

    def __len__(self) -> int:
        return math.ceil(self._count() / self.batch_size)

    @property
    def num_samples(self) -> int:
        return self._count()

    def with_batch_size(self, batch_size: int) -> TensorBatches:
        return TensorBatches(self.x, self.y, batch_size, self.shuffle, self.transform, self.seed + 1, self.shard)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.shard is not None:
            order = order[self.shard[0]::self.shard[1]]
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            yield (self.transform(xb, self.generator) if self.transform else xb), yb


@dataclass
class DataBundle:
    """What stages need of the data: loaders over train, val, test and calibration batches, and the shapes.

    `loader(split, batch_size, shard)` builds a loader; `train`, `val`, `test` and `calib` are the default
    ones. `splits` gives the sizes; `indices` the samples of each split in the source's own numbering
    (disjoint), where the source has one."""

    spec: str
    input_shape: tuple[int, int, int]
    num_classes: int
    make: Callable[[str, int, bool, tuple[int, int] | None], Iterable[Batch]]
    sizes: dict[str, int]
    settings: DataSettings
    class_names: list[str] = field(default_factory=list)
    indices: dict[str, torch.Tensor] = field(default_factory=dict)
    own_val: bool = False            # the data came with its own validation split
    preprocess: dict[str, Any] | None = None   # the model's own preprocessing, when one was given
    preprocessing: Preprocessing | None = None   # what the loaders apply, and where it came from
    _cache: dict[str, Iterable[Batch]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        memory_budget.check_data(self)   # its memory and loader processes, before any batch is drawn

    @property
    def splits(self) -> dict[str, int]:
        return {k: self.sizes[k] for k in SPLITS}

    def default_batch(self, split: str) -> int:
        if split == "train":
            return self.settings.batch_size or 64
        return 64 if split == "calib" else self.settings.eval_batch_size

    def loader(self, split: str, batch_size: int | None = None, shard: tuple[int, int] | None = None) -> Iterable[Batch]:
        return self.make(split, batch_size or self.default_batch(split), split == "train", shard)

    def _default(self, split: str) -> Iterable[Batch]:
        if split not in self._cache:
            self._cache[split] = self.loader(split)
        return self._cache[split]

    @property
    def train(self) -> Iterable[Batch]:
        return self._default("train")

    @property
    def val(self) -> Iterable[Batch]:
        return self._default("val")

    @property
    def test(self) -> Iterable[Batch]:
        return self._default("test")

    @property
    def calib(self) -> Iterable[Batch]:
        return self._default("calib")

    def example_input(self, batch: int = 1) -> torch.Tensor:
        x, _ = next(iter(self.calib))
        return x[:batch].clone()

    def describe(self) -> dict[str, Any]:
        """The report's `data` block: the spec, the settings, the three sizes."""
        return {"spec": self.spec, **self.settings.to_dict(), **self.splits, "own_val": self.own_val,
                **({"preprocessing": self.preprocessing.to_dict()} if self.preprocessing else {})}


# --- batch transforms for in-memory images (uint8 N x C x H x W) ---------------------------------------
def normaliser(mean: list[float], std: list[float], scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return lambda x: (x.float() / scale - m) / s


def resizer(size: int | None, resize: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Straight to size x size; with `resize`, the shorter side to `resize` (as torchvision's Resize) and then a
    centre crop of size x size (as its CenterCrop)."""
    if resize is not None:
        return lambda x: centre_crop(shorter_side(x, resize), size or resize)
    if size is None:
        return lambda x: x
    return lambda x: x if x.shape[-1] == size and x.shape[-2] == size else \
        F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def shorter_side(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    out = (side, int(side * w / h)) if h <= w else (int(side * h / w), side)
    return x if out == (h, w) else F.interpolate(x.float(), size=out, mode="bilinear", align_corners=False, antialias=True)


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def crop_and_flip(pad: int, flip: bool) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Random crops with `pad` pixels of zero padding (and horizontal flips): CIFAR's standard augmentation."""
    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * pad)
        out = padded.gather(2, rows)
        cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        out = out.gather(3, cols)
        if flip:
            mirror = torch.rand(n, generator=gen) < 0.5
            out = torch.where(mirror.view(n, 1, 1, 1), out.flip(-1), out)
        return out
    return augment


def tensor_transforms(mean: list[float], std: list[float], scale: float, size: int | None,
                      augment: BatchTransform | None, resize_first: int | None = None) -> tuple[BatchTransform, BatchTransform]:
    """(train, eval) batch transforms: augment (train only), resize (with `resize_first`: the shorter side to it,
    then a centre crop of `size`), normalise."""
    norm, resize = normaliser(mean, std, scale), resizer(size, resize_first)

    def evaluate(x: torch.Tensor, _gen: torch.Generator) -> torch.Tensor:
        return norm(resize(x))

    def train(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return norm(resize(augment(x, gen) if augment else x))
    return train, evaluate
