"""Data specs -> train / test / calibration batches.

Specs (see INTERFACE.md): `sample:digits`, `mnist:ROOT`, `fashionmnist:ROOT`, `cifar10:ROOT`,
`cifar100:ROOT`, `svhn:ROOT`, `imagefolder:ROOT[:SIZE]`, `fake:CxHxW:CLASSES[:N]`. Nothing is ever
downloaded. In-memory datasets are kept as uint8 tensors and normalised a whole batch at a time,
so no Python code runs per sample.
"""
from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import limits
from .errors import SpecError
from .limits import short
from .resources import samples_dir

SAMPLE_DIR = samples_dir()
Batch = tuple[torch.Tensor, torch.Tensor]


class TensorBatches:
    """Mini-batches sliced from whole tensors; reshuffled each pass when `shuffle`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = False,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def with_batch_size(self, batch_size: int) -> TensorBatches:
        return TensorBatches(self.x, self.y, batch_size, self.shuffle, self.transform,
                             int(torch.randint(0, 2**31, (1,), generator=self.generator)))

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                xb, yb = self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]
            else:
                idx = order[start:start + self.batch_size]
                xb, yb = self.x[idx], self.y[idx]
            yield (self.transform(xb) if self.transform else xb), yb


@dataclass
class DataBundle:
    """What a stage needs of the data: three iterables of (inputs, labels) and the shapes."""

    spec: str
    train: Iterable[Batch]
    test: Iterable[Batch]
    calib: Iterable[Batch]
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: list[str] = field(default_factory=list)

    def example_input(self, batch: int = 1) -> torch.Tensor:
        x, _ = next(iter(self.calib))
        return x[:batch].clone()


def _normaliser(mean: list[float], std: list[float], scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)

    def transform(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / scale - m) / s
    return transform


def _bundle_from_tensors(spec: str, xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                         mean: list[float], std: list[float], scale: float, classes: int,
                         batch_size: int = 64, calib_size: int = 256, seed: int = 0) -> DataBundle:
    norm = _normaliser(mean, std, scale)
    calib_idx = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(seed))[:calib_size]
    return DataBundle(
        spec=spec,
        train=TensorBatches(xtr, ytr, batch_size, shuffle=True, transform=norm, seed=seed),
        test=TensorBatches(xte, yte, 256, transform=norm),
        calib=TensorBatches(xtr[calib_idx], ytr[calib_idx], 64, transform=norm),
        input_shape=tuple(xtr.shape[1:]),  # type: ignore[arg-type]
        num_classes=classes,
        class_names=[str(i) for i in range(classes)],
    )


def _sample_digits(spec: str, seed: int) -> DataBundle:
    path = SAMPLE_DIR / "digits.npz"
    if not path.exists():
        raise SpecError(f"sample data missing: {path}")
    with np.load(path) as z:
        images = torch.from_numpy(z["images"]).unsqueeze(1)  # N,1,8,8 uint8
        labels = torch.from_numpy(z["labels"].astype(np.int64))
        train, test = torch.from_numpy(z["train"].astype(np.int64)), torch.from_numpy(z["test"].astype(np.int64))
    return _bundle_from_tensors(spec, images[train], labels[train], images[test], labels[test],
                                mean=[4.88], std=[6.02], scale=1.0, classes=10, seed=seed)


def _root(spec_root: str, prefix: str) -> Path:
    if not spec_root:
        raise SpecError(f"{prefix}: needs a folder, e.g. {prefix}:/data/{prefix}")
    root = Path(spec_root).expanduser()
    if not root.is_dir():
        raise SpecError(f"{prefix}:{spec_root}: no such folder")
    return root


def _torchvision_set(cls_name: str, root: Path, spec: str, **kw):
    import torchvision.datasets as D
    cls = getattr(D, cls_name)
    try:
        return cls(str(root), download=False, **kw)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise SpecError(f"{spec}: {cls_name} files not found under {root} ({str(exc).splitlines()[0]})") from None


def _mnist_like(cls_name: str, mean: float, std: float) -> Callable[[str, str, int], DataBundle]:
    def load(spec: str, rest: str, seed: int) -> DataBundle:
        root = _root(rest, spec.split(":")[0])
        tr = _torchvision_set(cls_name, root, spec, train=True)
        te = _torchvision_set(cls_name, root, spec, train=False)
        return _bundle_from_tensors(spec, tr.data.unsqueeze(1), tr.targets.long(), te.data.unsqueeze(1), te.targets.long(),
                                    [mean], [std], 255.0, len(tr.classes), seed=seed)
    return load


def _cifar_like(cls_name: str) -> Callable[[str, str, int], DataBundle]:
    def load(spec: str, rest: str, seed: int) -> DataBundle:
        root = _root(rest, spec.split(":")[0])
        tr = _torchvision_set(cls_name, root, spec, train=True)
        te = _torchvision_set(cls_name, root, spec, train=False)
        to_t = lambda d: torch.from_numpy(np.ascontiguousarray(d.data.transpose(0, 3, 1, 2)))
        return _bundle_from_tensors(spec, to_t(tr), torch.tensor(tr.targets), to_t(te), torch.tensor(te.targets),
                                    [0.49, 0.48, 0.45], [0.25, 0.24, 0.26], 255.0, len(tr.classes), seed=seed)
    return load


def _svhn(spec: str, rest: str, seed: int) -> DataBundle:
    root = _root(rest, "svhn")
    tr = _torchvision_set("SVHN", root, spec, split="train")
    te = _torchvision_set("SVHN", root, spec, split="test")
    return _bundle_from_tensors(spec, torch.from_numpy(tr.data), torch.from_numpy(tr.labels).long(),
                                torch.from_numpy(te.data), torch.from_numpy(te.labels).long(),
                                [0.44, 0.44, 0.47], [0.20, 0.20, 0.20], 255.0, 10, seed=seed)


class ImageFileError(SpecError):
    """An image file that cannot be read. Stays one line when a DataLoader worker re-raises it (the worker
    passes the message "Caught ImageFileError in DataLoader worker ...\n<traceback>"; the last line is ours)."""

    def __init__(self, message: str, details: str = "") -> None:
        if message.startswith("Caught ") and "\n" in message:
            details, message = message, message.rstrip().splitlines()[-1].partition(": ")[2]
        super().__init__(message, details)


def read_image(path: str):
    """An image file as RGB, refusing decompression bombs; any failure is an ImageFileError naming the file."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as fh:
                img = Image.open(fh)
                if img.width * img.height > limits.MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels")
                return img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"{path}: refused: more than {limits.MAX_IMAGE_PIXELS:,} pixels "
                             "(a decompression bomb?)") from None
    except Image.UnidentifiedImageError:
        raise ImageFileError(f"{path}: not a readable image (unknown format or corrupt)") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds of errors for a corrupt file
        raise ImageFileError(f"{path}: not a readable image ({type(exc).__name__}: {str(exc).strip()[:100]})") from None


def _image_size(spec: str, text: str) -> int:
    if not text:
        return 224
    try:
        size = int(text)
    except ValueError:
        raise SpecError(f"{spec}: image size must be a whole number, got {short(text)}") from None
    if not 1 <= size <= limits.MAX_IMAGE_SIDE:
        raise SpecError(f"{spec}: image size must be in [1, {limits.MAX_IMAGE_SIDE}], got {size}")
    return size


def check_images(spec: str, samples: list[tuple[str, int]], where: Path, at_least: int = 1) -> None:
    """SpecError unless the folder holds `at_least` images and a spread of up to IMAGES_CHECKED of them decode."""
    if len(samples) < at_least:
        raise SpecError(f"{spec}: {where} holds {len(samples)} image(s); at least {at_least} are needed "
                        "(some to train on, some to test)")
    picks = sorted({round(i) for i in np.linspace(0, len(samples) - 1, min(limits.IMAGES_CHECKED, len(samples)))})
    for i in picks:
        try:
            read_image(samples[i][0])
        except ImageFileError as exc:
            raise SpecError(f"{spec}: {exc.message}") from None


def _imagefolder(spec: str, rest: str, seed: int) -> DataBundle:
    import torchvision.datasets as D
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Subset, random_split

    path, _, size_s = rest.partition(":")
    size = _image_size(spec, size_s)
    root = _root(path, "imagefolder")
    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    try:
        if (root / "train").is_dir() and (root / "val").is_dir():
            train_set = D.ImageFolder(str(root / "train"), tf, loader=read_image)
            test_set = D.ImageFolder(str(root / "val"), tf, loader=read_image)
            check_images(spec, train_set.samples, root / "train")
            check_images(spec, test_set.samples, root / "val")
            classes = train_set.classes
        else:
            full = D.ImageFolder(str(root), tf, loader=read_image)
            check_images(spec, full.samples, root, at_least=2)
            n_test = max(1, len(full) // 5)
            train_set, test_set = random_split(full, [len(full) - n_test, n_test], torch.Generator().manual_seed(seed))
            classes = full.classes
    except (FileNotFoundError, RuntimeError, OSError) as exc:
        raise SpecError(f"{spec}: {str(exc).splitlines()[0]}") from None
    calib = Subset(train_set, list(range(min(256, len(train_set)))))
    gen = torch.Generator().manual_seed(seed)
    return DataBundle(spec, DataLoader(train_set, 32, shuffle=True, num_workers=2, generator=gen),
                      DataLoader(test_set, 64, num_workers=2), DataLoader(calib, 32),
                      (3, size, size), len(classes), list(classes))


def _fake_sizes(spec: str, rest: str) -> tuple[int, int, int, int, int]:
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


def _fake(spec: str, rest: str, seed: int) -> DataBundle:
    import torchvision.datasets as D
    import torchvision.transforms.functional as F

    c, h, w, classes, n = _fake_sizes(spec, rest)
    fake = D.FakeData(size=n, image_size=(c, h, w), num_classes=classes, random_offset=seed)
    x = torch.stack([F.pil_to_tensor(fake[i][0]) for i in range(n)])
    y = torch.tensor([int(fake[i][1]) for i in range(n)])
    n_test = max(1, n // 5)
    return _bundle_from_tensors(spec, x[n_test:], y[n_test:], x[:n_test], y[:n_test],
                                [0.5] * c, [0.29] * c, 255.0, classes, batch_size=32, seed=seed)


LOADERS: dict[str, Callable[[str, str, int], DataBundle]] = {
    "mnist": _mnist_like("MNIST", 0.1307, 0.3081),
    "fashionmnist": _mnist_like("FashionMNIST", 0.286, 0.353),
    "cifar10": _cifar_like("CIFAR10"),
    "cifar100": _cifar_like("CIFAR100"),
    "svhn": _svhn,
    "imagefolder": _imagefolder,
    "fake": _fake,
}
SAMPLE_DATA = {"digits": _sample_digits}


def load_data(spec: str, seed: int = 0) -> DataBundle:
    """Resolve a data spec; raises SpecError with a one-line message on anything wrong."""
    if not isinstance(spec, str) or ":" not in spec:
        raise SpecError(f"data spec {spec!r} should look like PREFIX:VALUE (e.g. sample:digits, mnist:/data/mnist)")
    prefix, _, rest = spec.partition(":")
    if prefix == "sample":
        if rest not in SAMPLE_DATA:
            close = difflib.get_close_matches(rest, SAMPLE_DATA, n=3)
            raise SpecError(f"unknown sample data {rest!r}" + (f" (did you mean {', '.join(close)}?)" if close else
                                                               f" (available: {', '.join(SAMPLE_DATA)})"))
        return SAMPLE_DATA[rest](spec, seed)
    if prefix not in LOADERS:
        close = difflib.get_close_matches(prefix, [*LOADERS, "sample"], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: sample, {', '.join(LOADERS)})"
        raise SpecError(f"unknown data spec prefix {prefix!r}{hint}")
    return LOADERS[prefix](spec, rest, seed)
