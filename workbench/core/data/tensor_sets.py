"""Data sets held in memory as uint8 tensors: the bundled digits, MNIST and Fashion-MNIST, CIFAR-10/100, SVHN,
and torchvision's FakeData. Batches are normalised (and resized, augmented) a whole batch at a time."""
from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import limits
from ..errors import SpecError
from ..resources import samples_dir
from .bundle import CALIB_SIZE, DataBundle, TensorBatches, carve, crop_and_flip, tensor_transforms
from .files import describe, mnist_arrays, os_problem, required
from .preprocess import Preprocessing, from_weights, resolve
from .settings import DataSettings

# augmentation per source under `augment: standard` (none for digits and MNIST, whose classes flips would change)
STANDARD = {"cifar10": crop_and_flip(4, flip=True), "cifar100": crop_and_flip(4, flip=True),
            "svhn": crop_and_flip(4, flip=False)}
Stats = tuple[list[float], list[float], float]     # (mean, std, the pixel scale they are given at)
Loader = Callable[[DataSettings, str, int, dict[str, Any] | None], DataBundle]   # (settings, spec after PREFIX:, seed, preprocess)


def tensor_bundle(settings: DataSettings, seed: int, preprocess: dict[str, Any] | None, x: torch.Tensor, y: torch.Tensor,
                  train: torch.Tensor, test: torch.Tensor, classes: int, stats: Stats,
                  names: list[str] | None = None, full_scale: float = 255.0) -> DataBundle:
    """Carve val from `train` (indices into x), apply the settings and the model's preprocessing, make loaders."""
    spec = settings.spec
    train_idx, val_idx = carve(train, settings.val_fraction, seed, settings.subset)
    if len(train_idx) == 0 or len(test) == 0:
        raise SpecError(f"{spec}: too few samples to split into train, val and test")
    pre, (mean, std, scale) = preprocessing(settings, preprocess, x.shape, stats, full_scale)
    augment = STANDARD.get(spec.split(":")[0]) if settings.augment == "standard" else None
    train_tf, eval_tf = tensor_transforms(mean, std, scale, pre.size, augment, pre.resize)
    calib_idx = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))[:CALIB_SIZE]]
    parts = {"train": train_idx, "val": val_idx if len(val_idx) else train_idx[:0], "test": test, "calib": calib_idx}

    def make(split: str, batch_size: int, shuffle: bool, shard: tuple[int, int] | None) -> TensorBatches:
        idx = parts[split]
        tf = train_tf if split == "train" else eval_tf
        return TensorBatches(x[idx], y[idx], batch_size, shuffle=shuffle, transform=tf, seed=seed, shard=shard)

    shape = (int(x.shape[1]), pre.size or int(x.shape[2]), pre.size or int(x.shape[3]))
    sizes = {k: len(v) for k, v in parts.items()}
    return DataBundle(spec, shape, classes, make, sizes, settings, names or [str(i) for i in range(classes)],
                      indices={k: parts[k] for k in ("train", "val", "test")}, preprocess=preprocess, preprocessing=pre)


def preprocessing(settings: DataSettings, weights: dict[str, Any] | None, shape: torch.Size, stats: Stats,
                  full_scale: float) -> tuple[Preprocessing, Stats]:
    """What the loaders apply, and the (mean, std, scale) they normalise with: the settings' over the weights' (when
    their mean has a value per channel), else the data set's own statistics at its own size."""
    mean, std, scale = stats
    channels = int(shape[1])
    default = Preprocessing("default", None, None, tuple(m * scale / full_scale for m in mean),
                            tuple(s * scale / full_scale for s in std), stats_from="default",
                            default="the data set's own mean and std")
    usable = weights if weights and len(weights.get("mean", [])) == channels else None
    pre = resolve(settings.preprocess, settings.image_size, from_weights(usable, crop=False) or default, channels,
                  settings.spec, own_side=int(min(shape[2], shape[3])))
    if pre.stats_from == "default":              # the data set's own, exactly as given (pixels at their own scale)
        return pre, (list(mean), list(std), scale)
    if pre.mean is None:                         # none: pixels scaled to [0, 1]
        return pre, ([0.0] * channels, [1.0] * channels, full_scale)
    return pre, (list(pre.mean), list(pre.std or ()), full_scale)


def sample_digits(settings: DataSettings, seed: int, preprocess: dict[str, Any] | None) -> DataBundle:
    path = samples_dir() / "digits.npz"
    if not path.exists():
        raise SpecError(f"sample data missing: {path}")
    with np.load(path) as z:
        images = torch.from_numpy(z["images"]).unsqueeze(1)  # N,1,8,8 uint8 (values 0..16)
        labels = torch.from_numpy(z["labels"].astype(np.int64))
        train, test = torch.from_numpy(z["train"].astype(np.int64)), torch.from_numpy(z["test"].astype(np.int64))
    return tensor_bundle(settings, seed, preprocess, images, labels, train, test, 10, ([4.88], [6.02], 1.0), full_scale=16.0)


def root_folder(spec_root: str, prefix: str) -> Path:
    if not spec_root:
        raise SpecError(f"{prefix}: needs a folder, e.g. {prefix}:/data/{prefix}")
    root = Path(spec_root).expanduser()
    try:
        mode = os.stat(root).st_mode
    except (OSError, ValueError) as exc:
        raise SpecError(f"{prefix}:{spec_root}: " + (os_problem(exc, "no such folder") if isinstance(exc, OSError)
                                                      else "not a valid path")) from None
    if not stat.S_ISDIR(mode):
        raise SpecError(f"{prefix}:{spec_root}: not a folder (it is {'a file' if stat.S_ISREG(mode) else describe(mode)})")
    return root


def _torchvision_set(cls_name: str, root: Path, spec: str, sub: str, names: list[str], **kw: Any) -> Any:
    """A torchvision data set, once its files are known to be there and to be regular files within the bounds
    (torchvision would read a FIFO or `/dev/zero` forever). torchvision checks their published MD5 before
    unpickling (CIFAR's batches are Python pickles), so a crafted file is refused, never unpickled."""
    import torchvision.datasets as D
    folder = root / sub
    where = f"ROOT/{sub}/" if sub else "ROOT/"
    required(spec, folder, names, f"the layout is {where} holding {', '.join(names)}, as torchvision downloads them")
    try:
        return getattr(D, cls_name)(str(root), download=False, **kw)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise SpecError(f"{spec}: {cls_name} files under {folder} do not match their published checksums "
                        f"(corrupt or not the original files: {str(exc).splitlines()[0]})") from None


def _joined(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor,
            yte: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pool of samples: train first, then test; (x, y, train indices, test indices)."""
    n = len(xtr)
    return torch.cat([xtr, xte]), torch.cat([ytr, yte]), torch.arange(n), torch.arange(n, n + len(xte))


def mnist_like(cls_name: str, mean: float, std: float) -> Loader:
    """MNIST or Fashion-MNIST from the raw IDX files (`files.mnist_arrays`), never torchvision's pickles."""
    def load(settings: DataSettings, rest: str, seed: int, preprocess: dict[str, Any] | None) -> DataBundle:
        import torchvision.datasets as D
        root = root_folder(rest, settings.spec.split(":")[0])
        xtr, ytr, xte, yte = (torch.from_numpy(a.copy()) for a in mnist_arrays(settings.spec, root, cls_name))
        x, y, itr, ite = _joined(xtr.unsqueeze(1), ytr.long(), xte.unsqueeze(1), yte.long())
        names = list(getattr(D, cls_name).classes)
        return tensor_bundle(settings, seed, preprocess, x, y, itr, ite, len(names), ([mean], [std], 255.0), names)
    return load


def cifar_like(cls_name: str) -> Loader:
    def load(settings: DataSettings, rest: str, seed: int, preprocess: dict[str, Any] | None) -> DataBundle:
        import torchvision.datasets as D
        root = root_folder(rest, settings.spec.split(":")[0])
        cls = getattr(D, cls_name)
        names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        tr = _torchvision_set(cls_name, root, settings.spec, cls.base_folder, names, train=True)
        te = _torchvision_set(cls_name, root, settings.spec, cls.base_folder, names, train=False)
        def to_t(d: Any) -> torch.Tensor:         # N x H x W x C uint8 -> N x C x H x W
            return torch.from_numpy(np.ascontiguousarray(d.data.transpose(0, 3, 1, 2)))
        x, y, itr, ite = _joined(to_t(tr), torch.tensor(tr.targets), to_t(te), torch.tensor(te.targets))
        return tensor_bundle(settings, seed, preprocess, x, y, itr, ite, len(tr.classes),
                             ([0.49, 0.48, 0.45], [0.25, 0.24, 0.26], 255.0), list(tr.classes))
    return load


def svhn(settings: DataSettings, rest: str, seed: int, preprocess: dict[str, Any] | None) -> DataBundle:
    root = root_folder(rest, "svhn")
    names = ["train_32x32.mat", "test_32x32.mat"]
    tr = _torchvision_set("SVHN", root, settings.spec, "", names, split="train")
    te = _torchvision_set("SVHN", root, settings.spec, "", names, split="test")
    x, y, itr, ite = _joined(torch.from_numpy(tr.data), torch.from_numpy(tr.labels).long(),
                             torch.from_numpy(te.data), torch.from_numpy(te.labels).long())
    return tensor_bundle(settings, seed, preprocess, x, y, itr, ite, 10, ([0.44, 0.44, 0.47], [0.20, 0.20, 0.20], 255.0))


def fake_sizes(spec: str, rest: str) -> tuple[int, int, int, int, int]:
    """(C, H, W, classes, N) of `fake:CxHxW:CLASSES[:N]`, checked against the bounds before anything is made."""
    parts = rest.split(":")
    try:
        if len(parts) > 3:
            raise ValueError
        c, h, w = (int(v) for v in parts[0].lower().split("x"))
        classes = int(parts[1])
        n = int(parts[2]) if len(parts) > 2 else 256
    except (ValueError, IndexError):
        raise SpecError(f"{spec}: expected fake:CxHxW:CLASSES[:N], e.g. fake:3x224x224:1000:64") from None
    if min(c, h, w, classes, n) <= 0:
        raise SpecError(f"{spec}: sizes must be positive")
    if c > 4:
        raise SpecError(f"{spec}: fake images have 1 to 4 channels, got {c}")
    problem = limits.shape_problem((c, h, w))
    if problem:
        raise SpecError(f"{spec}: {problem}")
    if classes > limits.MAX_CLASSES:
        raise SpecError(f"{spec}: at most {limits.MAX_CLASSES:,} classes, got {classes:,}")
    if not 2 <= n <= limits.MAX_FAKE_SAMPLES or n * c * h * w > limits.MAX_FAKE_BYTES:
        raise SpecError(f"{spec}: {n:,} samples of {c}x{h}x{w}; fake data holds 2 to {limits.MAX_FAKE_SAMPLES:,} "
                        f"samples and at most {limits.MAX_FAKE_BYTES:,} bytes of pixels")
    return c, h, w, classes, n


def fake(settings: DataSettings, rest: str, seed: int, preprocess: dict[str, Any] | None) -> DataBundle:
    import torchvision.datasets as D
    import torchvision.transforms.functional as F

    c, h, w, classes, n = fake_sizes(settings.spec, rest)
    data = D.FakeData(size=n, image_size=(c, h, w), num_classes=classes, random_offset=seed)
    x = torch.stack([F.pil_to_tensor(data[i][0]) for i in range(n)])
    y = torch.tensor([int(data[i][1]) for i in range(n)])
    n_test = max(1, n // 5)
    settings = settings if settings.batch_size else DataSettings(**{**settings.__dict__, "batch_size": 32})
    return tensor_bundle(settings, seed, preprocess, x, y, torch.arange(n_test, n), torch.arange(n_test), classes,
                         ([0.5] * c, [0.29] * c, 255.0))
