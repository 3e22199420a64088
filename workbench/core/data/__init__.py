"""Data specs -> train / val / test / calibration loaders.

Specs (see INTERFACE.md): `sample:digits`, `mnist:ROOT`, `fashionmnist:ROOT`, `cifar10:ROOT`, `cifar100:ROOT`,
`svhn:ROOT`, `imagefolder:ROOT[:SIZE]`, `fake:CxHxW:CLASSES[:N]`, as a string or with settings (`settings.py`).
Nothing is ever downloaded. Every data set has three disjoint splits (`bundle.py`); in-memory sets are
normalised a batch at a time (`tensor_sets.py`), image folders stream from disk (`image_folder.py`).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from ..errors import RecipeError, SpecError
from .bundle import SPLITS, DataBundle, TensorBatches
from .image_folder import ImageFileError, imagefolder, read_image
from .settings import DataSettings, parse_settings
from .tensor_sets import cifar_like, fake, mnist_like, sample_digits, svhn

__all__ = ["SPLITS", "DataBundle", "DataSettings", "ImageFileError", "TensorBatches", "load_data", "parse_settings", "read_image"]

LOADERS: dict[str, Callable[..., DataBundle]] = {
    "mnist": mnist_like("MNIST", 0.1307, 0.3081),
    "fashionmnist": mnist_like("FashionMNIST", 0.286, 0.353),
    "cifar10": cifar_like("CIFAR10"),
    "cifar100": cifar_like("CIFAR100"),
    "svhn": svhn,
    "fake": fake,
}
SAMPLE_DATA = {"digits": sample_digits}


def load_data(spec: str | dict[str, Any] | DataSettings, seed: int = 0, preprocess: dict[str, Any] | None = None,
              device: str = "cpu") -> DataBundle:
    """Resolve a data spec (or settings); SpecError with a one-line message on anything wrong. `preprocess` is
    the model's (input size, mean, std, ...): the loaders follow it unless the settings override the size."""
    try:
        settings = parse_settings(spec)
    except RecipeError as exc:
        raise SpecError(exc.message) from None
    text = settings.spec
    if ":" not in text:
        raise SpecError(f"data spec {text!r} should look like PREFIX:VALUE (e.g. sample:digits, mnist:/data/mnist)")
    prefix, _, rest = text.partition(":")
    if prefix == "sample":
        if rest not in SAMPLE_DATA:
            close = difflib.get_close_matches(rest, SAMPLE_DATA, n=3)
            raise SpecError(f"unknown sample data {rest!r}" + (f" (did you mean {', '.join(close)}?)" if close else
                                                               f" (available: {', '.join(SAMPLE_DATA)})"))
        return SAMPLE_DATA[rest](settings, seed, preprocess)
    if prefix == "imagefolder":
        return imagefolder(settings, rest, seed, preprocess, device)
    if prefix not in LOADERS:
        close = difflib.get_close_matches(prefix, [*LOADERS, "imagefolder", "sample"], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: sample, imagefolder, {', '.join(LOADERS)})"
        raise SpecError(f"unknown data spec prefix {prefix!r}{hint}")
    return LOADERS[prefix](settings, rest, seed, preprocess)


def spec_text(data: Any) -> str:
    """The spec string of a data setting (string or mapping)."""
    return data.spec if isinstance(data, DataSettings) else data.get("spec", "") if isinstance(data, dict) else str(data)
