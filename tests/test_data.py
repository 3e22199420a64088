"""Data specs: the bundled digits, torchvision datasets from local files, image folders, fake data, errors."""
import struct

import numpy as np
import pytest
import torch

from workbench.core.data import TensorBatches, load_data
from workbench.core.errors import SpecError


def test_sample_digits_split_is_fixed_and_stratified(digits):
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert digits.splits == {"train": 1294, "val": 144, "test": 359}       # val: 10% of the fixed 1438 training images
    assert digits.train.num_samples == 1294 and digits.val.num_samples == 144 and digits.test.num_samples == 359
    ys = torch.cat([y for _, y in digits.test])
    counts = torch.bincount(ys, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38          # ~20% of each class's ~180
    x, _ = next(iter(digits.test))
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2   # normalised
    again = load_data("sample:digits")
    assert torch.equal(next(iter(again.test))[1], next(iter(digits.test))[1])
    assert sum(len(y) for _, y in digits.calib) == 256


def test_tensor_batches_shuffle_per_pass_and_cover_everything():
    b = TensorBatches(torch.arange(10).float(), torch.arange(10), batch_size=4, shuffle=True, seed=1)
    first = torch.cat([y for _, y in b])
    second = torch.cat([y for _, y in b])
    assert len(b) == 3
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)


def _write_idx(path, array, magic):
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic))
        for d in array.shape:
            fh.write(struct.pack(">I", d))
        fh.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("prefix,folder", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_mnist_like_from_local_files(tmp_path, prefix, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)), 0x803)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), 0x801)
    d = load_data(f"{prefix}:{tmp_path}")
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert d.splits == {"train": 27, "val": 3, "test": 10}
    x, y = next(iter(d.train))
    assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28)


def _skip_checksums(monkeypatch):
    """torchvision checks the md5 of the published files; the synthetic ones here cannot match it."""
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(svhn, "check_integrity", lambda *a, **k: True)


@pytest.mark.parametrize("prefix,folder,label_key,classes", [
    ("cifar10", "cifar-10-batches-py", "labels", 10), ("cifar100", "cifar-100-python", "fine_labels", 100)])
def test_cifar_from_local_files(tmp_path, monkeypatch, prefix, folder, label_key, classes):
    import pickle
    _skip_checksums(monkeypatch)
    import torchvision.datasets as D
    cls = D.CIFAR10 if prefix == "cifar10" else D.CIFAR100
    root = tmp_path / folder
    root.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for name, _ in cls.train_list + cls.test_list:
        data = rng.integers(0, 255, (4, 3 * 32 * 32), dtype=np.uint8)   # rows: R plane, G plane, B plane
        images[name] = data
        with open(root / name, "wb") as fh:
            pickle.dump({"data": data, label_key: list(rng.integers(0, classes, 4))}, fh)
    with open(root / cls.meta["filename"], "wb") as fh:
        pickle.dump({cls.meta["key"]: [f"c{i}" for i in range(classes)]}, fh)
    d = load_data(f"{prefix}:{tmp_path}")
    assert d.input_shape == (3, 32, 32) and d.num_classes == classes
    n = 4 * len(cls.train_list)
    assert d.splits == {"train": n - round(0.1 * n), "val": round(0.1 * n), "test": 4}
    # channel-first images: the test split's first image is the first row of test_batch, planes in order
    first = images[cls.test_list[0][0]][0].reshape(3, 32, 32).astype(np.float32) / 255.0
    x, _ = next(iter(d.test))
    mean, std = torch.tensor([0.49, 0.48, 0.45]).view(3, 1, 1), torch.tensor([0.25, 0.24, 0.26]).view(3, 1, 1)
    assert torch.allclose(x[0] * std + mean, torch.from_numpy(first), atol=1e-5)


def test_svhn_from_local_files(tmp_path, monkeypatch):
    from scipy.io import savemat
    _skip_checksums(monkeypatch)
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 5)):
        # the published .mat layout: X is 32x32x3xN, y holds 1..10 with 10 standing for the digit 0
        savemat(tmp_path / f"{split}_32x32.mat", {"X": rng.integers(0, 255, (32, 32, 3, n), dtype=np.uint8),
                                                  "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})
    d = load_data(f"svhn:{tmp_path}")
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10
    assert d.splits == {"train": 11, "val": 1, "test": 5}
    labels = torch.cat([y for _, y in d.train])
    assert labels.min() >= 0 and labels.max() <= 9


@pytest.mark.parametrize("prefix", ["mnist", "fashionmnist", "cifar10", "cifar100", "svhn"])
def test_dataset_root_without_files_is_a_clear_error(tmp_path, prefix):
    with pytest.raises(SpecError) as exc:
        load_data(f"{prefix}:{tmp_path}")
    assert str(tmp_path) in str(exc.value)
    with pytest.raises(SpecError, match="no such folder"):
        load_data(f"{prefix}:{tmp_path}/missing")


def test_imagefolder(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    d = load_data(f"imagefolder:{tmp_path}:16")
    assert d.input_shape == (3, 16, 16) and d.num_classes == 2 and d.class_names == ["cat", "dog"]
    x, y = next(iter(d.test))                        # train/ and val/: val/ is the test split, val is carved from train
    assert x.shape == (6, 3, 16, 16) and d.splits == {"train": 5, "val": 1, "test": 6} and not d.own_val


def test_fake_data():
    d = load_data("fake:3x32x32:5:40")
    assert d.input_shape == (3, 32, 32) and d.num_classes == 5
    assert d.splits == {"train": 29, "val": 3, "test": 8}


@pytest.mark.parametrize("spec,needle", [
    ("digits", "PREFIX:VALUE"),
    ("sample:digitz", "did you mean digits"),
    ("minst:/tmp", "did you mean mnist"),
    ("fake:3x32:10", "fake:CxHxW:CLASSES"),
    ("mnist:", "needs a folder"),
])
def test_bad_data_specs(spec, needle):
    with pytest.raises(SpecError) as exc:
        load_data(spec)
    assert needle in str(exc.value)


def test_digits_splits_are_disjoint_and_cover_the_data(digits):
    sets = {k: set(v.tolist()) for k, v in digits.indices.items()}
    assert sum(len(s) for s in sets.values()) == 1797 == len(set().union(*sets.values()))
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    other = load_data("sample:digits", seed=5)
    assert set(other.indices["test"].tolist()) == sets["test"]             # the test split is fixed
    assert set(other.indices["val"].tolist()) != sets["val"]               # val is carved with the seed
    calib = torch.cat([x for x, _ in digits.calib])
    train = torch.cat([x for x, _ in digits.loader("train", 2000)])
    assert all(bool((train == c).all(dim=(1, 2, 3)).any()) for c in calib[:20])   # calibration comes from train


def test_data_settings_in_a_mapping(tmp_path):
    d = load_data({"spec": "sample:digits", "val_fraction": 0.25, "subset": 100, "batch_size": 10, "eval_batch_size": 50})
    assert d.splits == {"train": 100, "val": 360, "test": 359}
    assert len(d.train) == 10 and len(d.test) == 8
    from workbench.core.errors import SpecError as E
    for bad, needle in (({"spec": "sample:digits", "val_fraction": 2}, "data.val_fraction: must be in [0.0, 0.9]"),
                        ({"spec": "sample:digits", "augment": "lots"}, "data.augment: must be one of none, standard"),
                        ({"spec": "sample:digits", "batch": 3}, "data.batch: unknown data setting"),
                        ({"val_fraction": 0.1}, "data.spec:")):
        with pytest.raises(E, match=needle.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
            load_data(bad)


def test_standard_augmentation_crops_and_flips_cifar_like_batches():
    from workbench.core.data.bundle import crop_and_flip
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    out = crop_and_flip(2, flip=True)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    # every output row is a shifted (and maybe mirrored) piece of the padded input, padding zeros included
    same = crop_and_flip(0, flip=False)(x, torch.Generator().manual_seed(0))
    assert torch.equal(same, x)


def test_image_folder_with_three_splits_and_augmentation(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    d = load_data({"spec": f"imagefolder:{tmp_path}", "augment": "standard", "batch_size": 4, "workers": 0, "image_size": 16})
    assert d.own_val and d.splits == {"train": 12, "val": 4, "test": 6}
    x, y = next(iter(d.train))
    assert x.shape == (4, 3, 16, 16) and d.input_shape == (3, 16, 16)


def test_a_recipe_trains_and_evaluates_on_an_image_folder_with_settings(tmp_path):
    from PIL import Image
    from prune_helpers import assert_ok, run_recipe
    rng = np.random.default_rng(1)
    for cls in ("circle", "square", "line"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.jpg")
    run, events = run_recipe(f"""
model: arch:resnet8:width=8
data: {{spec: "imagefolder:{tmp_path / 'imgs'}", augment: standard, batch_size: 16, workers: 2, image_size: 32}}
stages:
  - {{kind: train, epochs: 1}}
  - {{kind: evaluate, split: val}}
""", tmp_path)
    assert_ok(events)
    report = run.report.data
    assert report["splits"] == {"train": 26, "val": 3, "test": 7}                      # 36 images: a fifth tests
    assert report["data_settings"]["augment"] == "standard" and report["data_settings"]["workers"] == 2
    assert all(0.0 <= s["accuracy"] <= 1.0 and s["val_accuracy"] is not None for s in report["snapshots"])
