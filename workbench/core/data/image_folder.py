"""`imagefolder:ROOT[:SIZE]`: class-per-folder images, streamed from disk by DataLoader worker processes.

Layouts: ROOT/train, ROOT/val and ROOT/test (three splits as given); ROOT/train and ROOT/val (val is the test
split; val for decisions is carved from train); or one folder (test and val carved with the seed). Images
are decoded in worker processes (persistent between epochs), with `pin_memory` on CUDA; nothing but file
paths is held in memory, so memory stays flat however many images there are. Preprocessing (`preprocess.py`):
the settings' (resize, crop, mean, std, or none), else the model's weights' (and their interpolation), else ImageNet's
mean and std with a resize to size / 0.875 and a centre crop.

The folder is untrusted: it is listed with `os.scandir`, stopping as soon as a bound (classes, images,
entries, depth) is passed; an image name that is not a regular file (a FIFO, a device, a symlink loop or
a link to one) is refused while listing, before anything is opened. Pillow opens only the raster
formats in IMAGE_FORMATS (never EPS/PS/PDF, whose plugins start Ghostscript), and an image's pixel
count is checked from its header before it is decoded.
"""
from __future__ import annotations

import dataclasses
import os
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import limits
from ..errors import SpecError
from ..limits import short
from .bundle import CALIB_SIZE, DataBundle, carve
from .files import FileProblem, describe, open_regular, os_problem
from .preprocess import NONE, Preprocessing, from_weights, resolve
from .settings import DataSettings
from .tensor_sets import root_folder

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

ImageTransform = Callable[["PILImage"], torch.Tensor]     # a torchvision transform: an RGB image to a C x H x W tensor

IMAGENET: dict[str, Any] = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "interpolation": "bilinear", "crop_pct": 0.875}
DEFAULT = Preprocessing("default", 224, None, tuple(IMAGENET["mean"]), tuple(IMAGENET["std"]), "bilinear", 0.875,
                        stats_from="default", default="ImageNet's mean and std, a resize to size / 0.875")
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")      # the only Pillow plugins ever tried
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")   # the files listed


class ImageFileError(SpecError):
    """An image file that cannot be read."""


@dataclasses.dataclass(frozen=True)
class BadImage:
    """An image that could not be read, as a loader's worker hands it back: a sample (and then a whole batch) in
    place of raising, since a worker's exception reaches the loader's process only as the text of its traceback.
    `ImageLoader` raises it there again as the ImageFileError it was."""
    message: str


def collate(samples: list[Any]) -> Any:
    """torch's default collation, or the first BadImage of the batch."""
    from torch.utils.data import default_collate
    bad = next((s[0] for s in samples if isinstance(s[0], BadImage)), None)
    return bad if bad is not None else default_collate(samples)


class ImageLoader:
    """A DataLoader of ImageFiles whose batches may be a BadImage: raised as ImageFileError when met. Everything
    else (len, sampler, dataset, ...) is the loader's."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            if isinstance(batch, BadImage):
                raise ImageFileError(batch.message)
            yield batch


def read_image(path: str) -> PILImage:
    """An image file as RGB; any failure is an ImageFileError naming the file. Only a regular file is opened;
    Pillow tries only IMAGE_FORMATS; the pixel count is read from the header and refused before decoding."""
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = limits.MAX_IMAGE_PIXELS        # Pillow's own check, on this bound
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path, limits.MAX_IMAGE_FILE_BYTES) as fh:
                img = Image.open(fh, formats=IMAGE_FORMATS)
                if img.width * img.height > limits.MAX_IMAGE_PIXELS:     # before load(): nothing decoded yet
                    raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels")
                return img.convert("RGB")
    except FileProblem as exc:
        raise ImageFileError(f"{path}: {exc}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"{path}: refused: more than {limits.MAX_IMAGE_PIXELS:,} pixels "
                             "(a decompression bomb?)") from None
    except Image.UnidentifiedImageError:
        raise ImageFileError(f"{path}: not a readable image (unknown format or corrupt)") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds of errors for a corrupt file
        raise ImageFileError(f"{path}: not a readable image ({type(exc).__name__}: {str(exc).strip()[:100]})") from None


class FolderScan:
    """The classes and images of one image folder, listed within the bounds of `limits` (`scan`)."""

    def __init__(self, spec: str, root: Path) -> None:
        self.spec, self.root, self.entries, self.images = spec, root, 0, 0
        self.classes: list[str] = []
        self.samples: list[tuple[str, int]] = []

    def refuse(self, path: str | Path, problem: str) -> SpecError:
        return SpecError(f"{self.spec}: {path}: {problem}")

    def listing(self, folder: str) -> Iterator[os.DirEntry[str]]:
        """The entries of `folder`, counted against MAX_FOLDER_ENTRIES as they come (never all listed first)."""
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    self.entries += 1
                    if self.entries > limits.MAX_FOLDER_ENTRIES:
                        raise self.refuse(self.root, f"more than {limits.MAX_FOLDER_ENTRIES:,} files and folders "
                                                     "(the limit of one image folder)")
                    yield entry
        except OSError as exc:
            raise self.refuse(folder, os_problem(exc, "no such folder")) from None

    @staticmethod
    def kind(entry: os.DirEntry[str]) -> str:
        """"dir", "file", or what else the entry is (links followed: a loop or a dangling link says so)."""
        try:
            if not entry.is_symlink():
                if entry.is_dir(follow_symlinks=False):
                    return "dir"
                if entry.is_file(follow_symlinks=False):
                    return "file"
                mode = entry.stat(follow_symlinks=False).st_mode
            else:
                mode = os.stat(entry.path).st_mode
        except OSError as exc:
            return os_problem(exc, "a symlink to nothing")
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else f"{describe(mode)}, not a regular file"

    def scan(self) -> FolderScan:
        for entry in self.listing(str(self.root)):
            kind = self.kind(entry)
            if kind == "dir":
                self.classes.append(entry.name)
                if len(self.classes) > limits.MAX_CLASSES:
                    raise self.refuse(self.root, f"more than {limits.MAX_CLASSES:,} class folders (the limit)")
            elif "symlink loop" in kind:
                raise self.refuse(entry.path, kind)
        if not self.classes:
            raise self.refuse(self.root, "holds no class folders (expected ROOT/<class>/<image>)")
        self.classes.sort()
        for index, name in enumerate(self.classes):
            found: list[tuple[str, list[str]]] = []
            self.walk(os.path.join(str(self.root), name), frozenset(), 0, found)
            if not any(names for _, names in found):
                raise self.refuse(os.path.join(str(self.root), name),
                                  f"holds no images (read: {', '.join(IMAGE_SUFFIXES)})")
            for folder, names in sorted(found):           # torchvision's ImageFolder order: by folder, then name
                self.samples.extend((os.path.join(folder, n), index) for n in sorted(names))
        return self

    def walk(self, folder: str, ancestors: frozenset[tuple[int, int]], depth: int, found: list[tuple[str, list[str]]]) -> None:
        if depth > limits.MAX_FOLDER_DEPTH:
            raise self.refuse(folder, f"folders nested more than {limits.MAX_FOLDER_DEPTH} deep (the limit)")
        try:
            st = os.stat(folder)
        except OSError as exc:
            raise self.refuse(folder, os_problem(exc, "no such folder")) from None
        if (st.st_dev, st.st_ino) in ancestors:
            raise self.refuse(folder, "a symlink loop (a folder that contains itself)")
        ancestors, names, subfolders = ancestors | {(st.st_dev, st.st_ino)}, [], []
        for entry in self.listing(folder):
            kind = self.kind(entry)
            if kind == "dir":
                subfolders.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_SUFFIXES) or "symlink loop" in kind:
                if kind != "file":
                    raise self.refuse(entry.path, kind)
                names.append(entry.name)
                self.images += 1
                if self.images > limits.MAX_IMAGE_FILES:
                    raise self.refuse(self.root, f"more than {limits.MAX_IMAGE_FILES:,} images (the limit)")
        found.append((folder, names))
        for sub in subfolders:
            self.walk(sub, ancestors, depth + 1, found)


class ImageFiles(Dataset[tuple[Any, int]]):
    """A map-style data set over (path, class) pairs: `read_image` then `transform`. Picklable for workers."""

    def __init__(self, root: Path, classes: list[str], samples: list[tuple[str, int]], transform: ImageTransform | None = None,
                 expect: tuple[int, int] | None = None) -> None:
        self.root, self.classes, self.samples, self.transform = root, classes, samples, transform
        self.expect = expect          # (height, width) every image must have (preprocess none: nothing resizes them)

    def with_transform(self, transform: ImageTransform | None) -> ImageFiles:
        return ImageFiles(self.root, self.classes, self.samples, transform, self.expect)

    def expecting(self, shape: tuple[int, int]) -> ImageFiles:
        return ImageFiles(self.root, self.classes, self.samples, self.transform, shape)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:        # (the transformed image, else the image; its class)
        path, label = self.samples[i]
        try:
            image = read_image(path)
        except ImageFileError as exc:
            return BadImage(exc.message), label         # raised again, typed, where the batch arrives
        if self.expect and (image.height, image.width) != self.expect:
            return BadImage(f"{path}: {image.width}x{image.height} pixels; with preprocess none every image must be "
                            f"{self.expect[1]}x{self.expect[0]} (or set preprocess's resize and crop)"), label
        return (self.transform(image) if self.transform else image), label


def image_files(spec: str, root: Path) -> ImageFiles:
    scan = FolderScan(spec, root).scan()
    return ImageFiles(root, scan.classes, scan.samples)


def image_size(spec: str, text: str) -> int | None:
    if not text:
        return None
    try:
        size = int(text)
    except ValueError:
        raise SpecError(f"{spec}: image size must be a whole number, got {short(text)}") from None
    if not 1 <= size <= limits.MAX_IMAGE_SIDE:
        raise SpecError(f"{spec}: image size must be in [1, {limits.MAX_IMAGE_SIDE}], got {size}")
    return size


def check_images(spec: str, samples: list[tuple[str, int]], where: Path, at_least: int = 1) -> dict[tuple[int, int], str]:
    """SpecError unless the folder holds `at_least` images and a spread of up to IMAGES_CHECKED of them decode;
    {(height, width): an image of that size} of those checked."""
    if len(samples) < at_least:
        raise SpecError(f"{spec}: {where} holds {len(samples)} image(s); at least {at_least} are needed "
                        "(some to train on, some to test)")
    picks = sorted({round(i) for i in np.linspace(0, len(samples) - 1, min(limits.IMAGES_CHECKED, len(samples)))})
    seen: dict[tuple[int, int], str] = {}
    for i in picks:
        try:
            image = read_image(samples[i][0])
        except ImageFileError as exc:
            raise SpecError(f"{spec}: {exc.message}") from None
        seen.setdefault((image.height, image.width), samples[i][0])
    return seen


def own_size(spec: str, seen: dict[tuple[int, int], str]) -> tuple[int, int]:
    """The one size of the images checked (preprocess none resizes nothing); SpecError naming two that differ."""
    if len(seen) > 1:
        (a, path_a), (b, path_b) = list(seen.items())[:2]
        raise SpecError(f"{spec}: preprocess none needs images of one size, but {path_a} is {a[1]}x{a[0]} and {path_b} "
                        f"is {b[1]}x{b[0]}; set preprocess's resize and crop (or an image size)")
    return next(iter(seen))


def transforms(pre: Preprocessing, shape: tuple[int, int], augment: bool) -> tuple[ImageTransform, ImageTransform]:
    """(train, eval) torchvision transforms: random-resized-crop + flip for training under `augment: standard`, else
    the preprocessing's resize and centre crop (none: the image as it is); then to [0, 1] and normalised."""
    import torchvision.transforms as T
    interp = T.InterpolationMode(pre.interpolation)
    tail = [T.ToTensor(), *([T.Normalize(list(pre.mean), list(pre.std or ()))] if pre.mean else [])]
    head: list[Any]                       # torchvision transforms (untyped)
    if pre.size is None:
        head = []
    elif pre.resize:
        head = [T.Resize(pre.resize, interpolation=interp), T.CenterCrop(pre.size)]
    else:
        head = [T.Resize((pre.size, pre.size), interpolation=interp)]
    evaluate = T.Compose([*head, *tail])
    train = T.Compose([T.RandomResizedCrop(shape, interpolation=interp), T.RandomHorizontalFlip(), *tail]) if augment else evaluate
    return train, evaluate


def preprocessing(settings: DataSettings, spec_size: int | None, weights: dict[str, Any] | None) -> Preprocessing:
    """What this folder's loaders apply: the settings' preprocessing over the weights' own, else ImageNet's mean and
    std with a resize to size / 0.875 and a centre crop (size: the settings', the spec's, the weights', else 224)."""
    base = from_weights(weights, crop=True) or DEFAULT
    if spec_size and settings.preprocess == NONE:
        raise SpecError(f"{settings.spec}: preprocess is none (images are used as they are): leave the size out of the spec")
    return resolve(settings.preprocess, settings.image_size or spec_size, base, 3, settings.spec)


def default_workers(settings: DataSettings) -> int:
    if settings.workers is not None:
        return settings.workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def loader_context() -> str | None:
    """How the loader's workers start: forked on Linux, whichever process runs the loader (`workbench run`, a GUI run's
    own process, the GUI's model panel), so a loader starts in milliseconds and the same way everywhere. A GUI run's
    process is started by a forkserver, and a forkserver's children start their own processes through a forkserver
    too: each loader's workers would import torch afresh (seconds per loader, each time a split is measured).
    Elsewhere (macOS, Windows) the platform's default (spawn)."""
    return "fork" if sys.platform.startswith("linux") else None


def imagefolder(settings: DataSettings, rest: str, seed: int, preprocess: dict[str, Any] | None,
                device: str = "cpu") -> DataBundle:
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    spec = settings.spec
    path, _, size_s = rest.partition(":")
    root = root_folder(path, "imagefolder")
    pre = preprocessing(settings, image_size(spec, size_s), preprocess)
    has = {name: (root / name).is_dir() for name in ("train", "val", "test")}
    if has["train"] and (has["val"] or has["test"]):
        test_root = root / ("test" if has["test"] else "val")
        pools = {"train": image_files(spec, root / "train"), "test": image_files(spec, test_root)}
        own_val = has["val"] and has["test"]
        if own_val:
            pools["val"] = image_files(spec, root / "val")
    else:
        own_val, pools = False, {"train": image_files(spec, root)}
    sizes_seen: dict[tuple[int, int], str] = {}
    for ds in pools.values():
        sizes_seen |= check_images(spec, ds.samples, Path(ds.root), at_least=1 if len(pools) > 1 else 2)
    shape = (pre.size, pre.size) if pre.size else own_size(spec, sizes_seen)
    if pre.size is None:                                    # preprocess none: every image must be that size
        pools = {k: v.expecting(shape) for k, v in pools.items()}
    train_tf, eval_tf = transforms(pre, shape, settings.augment == "standard")
    classes = pools["train"].classes
    n = len(pools["train"])
    if "test" in pools:
        train_idx = torch.arange(n)
        test_idx = torch.arange(len(pools["test"]))
    else:                                                   # one folder: a fifth is the test split
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        test_idx, train_idx = order[:max(1, n // 5)].sort().values, order[max(1, n // 5):]
    if own_val:
        train_idx = train_idx[:settings.subset] if settings.subset else train_idx
        val_idx = torch.arange(len(pools["val"]))
    else:
        train_idx, val_idx = carve(train_idx, settings.val_fraction, seed, settings.subset)
    calib_idx = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))[:CALIB_SIZE]]
    parts = {"train": ("train", train_idx), "val": ("val" if own_val else "train", val_idx),
             "test": ("test" if "test" in pools else "train", test_idx), "calib": ("train", calib_idx)}
    workers, pin = default_workers(settings), str(device).startswith("cuda")

    def make(split: str, batch_size: int, shuffle: bool, shard: tuple[int, int] | None) -> Iterable[Any]:
        pool_name, idx = parts[split]
        pool = pools[pool_name]
        dataset = pool.with_transform(train_tf if split == "train" else eval_tf)
        subset = Subset(dataset, idx.tolist())
        sampler: DistributedSampler[tuple[Any, int]] | None = (
            DistributedSampler(subset, shard[1], shard[0], shuffle=shuffle, seed=seed) if shard else None)
        gen = torch.Generator().manual_seed(seed)
        n_workers = 0 if split == "calib" else workers
        return ImageLoader(DataLoader(subset, batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                                      generator=gen, num_workers=n_workers, pin_memory=pin, collate_fn=collate,
                                      persistent_workers=n_workers > 0, prefetch_factor=4 if n_workers else None,
                                      multiprocessing_context=loader_context() if n_workers else None))

    sizes = {k: len(v[1]) for k, v in parts.items()}
    indices = {} if "test" in pools else {k: parts[k][1] for k in ("train", "val", "test")}
    return DataBundle(spec, (3, *shape), len(classes), make, sizes, settings, list(classes),
                      indices=indices, own_val=own_val, preprocess=preprocess, preprocessing=pre)
