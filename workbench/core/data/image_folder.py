"""`imagefolder:ROOT[:SIZE]`: class-per-folder images, streamed from disk by DataLoader worker processes.

Layouts: ROOT/train, ROOT/val and ROOT/test (three splits as given); ROOT/train and ROOT/val (val is the test
split; val for decisions is carved from train); or one folder (test and val carved with the seed). Images
are decoded in worker processes (persistent between epochs), with `pin_memory` on CUDA; nothing but file
paths is held in memory, so memory stays flat however many images there are. Preprocessing follows the
model's (resize, crop, interpolation, mean, std) unless the settings override the size.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import limits
from ..errors import SpecError
from ..limits import short
from .bundle import CALIB_SIZE, DataBundle, carve
from .settings import DataSettings
from .tensor_sets import root_folder

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "interpolation": "bilinear", "crop_pct": 0.875}


class ImageFileError(SpecError):
    """An image file that cannot be read. Stays one line when a DataLoader worker re-raises it (the worker
    passes the message "Caught ImageFileError in DataLoader worker ...\\n<traceback>"; the last line is ours)."""

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


def transforms(pre: dict, size: int, augment: bool):
    """(train, eval) torchvision transforms: random-resized-crop + flip for training under `augment: standard`,
    else resize + center crop as the model's preprocessing says."""
    import torchvision.transforms as T
    interp = T.InterpolationMode(pre.get("interpolation", "bilinear"))
    resize = int(round(size / float(pre.get("crop_pct", 0.875))))
    tail = [T.ToTensor(), T.Normalize(pre["mean"], pre["std"])]
    evaluate = T.Compose([T.Resize(resize, interpolation=interp), T.CenterCrop(size), *tail])
    train = T.Compose([T.RandomResizedCrop(size, interpolation=interp), T.RandomHorizontalFlip(), *tail]) if augment else evaluate
    return train, evaluate


def default_workers(settings: DataSettings) -> int:
    if settings.workers is not None:
        return settings.workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def imagefolder(settings: DataSettings, rest: str, seed: int, preprocess: dict | None, device: str = "cpu") -> DataBundle:
    import torchvision.datasets as D
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    spec = settings.spec
    path, _, size_s = rest.partition(":")
    root = root_folder(path, "imagefolder")
    pre = {**IMAGENET, **(preprocess or {})}
    size = settings.image_size or image_size(spec, size_s) or int((preprocess or {}).get("input_size", [3, 224, 224])[-1])
    train_tf, eval_tf = transforms(pre, size, settings.augment == "standard")
    has = {name: (root / name).is_dir() for name in ("train", "val", "test")}
    try:
        if has["train"] and (has["val"] or has["test"]):
            base = root / "train"
            test_root = root / ("test" if has["test"] else "val")
            pools = {"train": D.ImageFolder(str(base), loader=read_image), "test": D.ImageFolder(str(test_root), loader=read_image)}
            own_val = has["val"] and has["test"]
            if own_val:
                pools["val"] = D.ImageFolder(str(root / "val"), loader=read_image)
        else:
            base, own_val = root, False
            pools = {"train": D.ImageFolder(str(root), loader=read_image)}
    except (FileNotFoundError, RuntimeError, OSError) as exc:
        raise SpecError(f"{spec}: {str(exc).splitlines()[0]}") from None
    for ds in pools.values():
        check_images(spec, ds.samples, Path(ds.root), at_least=1 if len(pools) > 1 else 2)
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

    def make(split: str, batch_size: int, shuffle: bool, shard: tuple[int, int] | None):
        pool_name, idx = parts[split]
        pool = pools[pool_name]
        dataset = D.ImageFolder(pool.root, transform=train_tf if split == "train" else eval_tf, loader=read_image)
        subset = Subset(dataset, idx.tolist())
        sampler = DistributedSampler(subset, shard[1], shard[0], shuffle=shuffle, seed=seed) if shard else None
        gen = torch.Generator().manual_seed(seed)
        n_workers = 0 if split == "calib" else workers
        return DataLoader(subset, batch_size, shuffle=shuffle and sampler is None, sampler=sampler, generator=gen,
                          num_workers=n_workers, pin_memory=pin, persistent_workers=n_workers > 0,
                          prefetch_factor=4 if n_workers else None)

    sizes = {k: len(v[1]) for k, v in parts.items()}
    indices = {} if "test" in pools else {k: parts[k][1] for k in ("train", "val", "test")}
    return DataBundle(spec, (3, size, size), len(classes), make, sizes, settings, list(classes),
                      indices=indices, own_val=own_val, preprocess=preprocess)
