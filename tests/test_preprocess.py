"""One set of data settings everywhere: `data.preprocess` (none, or resize/crop/mean/std) parses with field paths,
round-trips through a recipe, is applied by the loaders as said, and the model panel's measurement
(`layer_data.open_model`), `workbench inspect --data` and a run's baseline use the same settings and agree."""
import json
import os

import numpy as np
import pytest
import torch
import yaml
from cli_helpers import run_cli
from PIL import Image

from workbench.core.data import load_data
from workbench.core.data.preprocess import NONE, PreprocessSettings, describe
from workbench.core.data.settings import DataSettings, parse_settings
from workbench.core.errors import BadInput, RecipeError, SpecError
from workbench.core.layer_data import open_model
from workbench.core.recipe import Recipe


def folder(root, size=(40, 40), per_class=10, sizes=None):
    """Two classes of PNGs (dark and light, with noise); `sizes` gives some images another size."""
    rng = np.random.default_rng(0)
    for label, base in (("dark", 60), ("light", 190)):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            h, w = (sizes or {}).get((label, i), size)
            pixels = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:02d}.png")
    return root


# --- parsing ------------------------------------------------------------------------------------------------------
def test_preprocess_parses_and_round_trips_through_a_recipe():
    mapping = {"resize": 37, "crop": 32, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.25]}
    settings = parse_settings({"spec": "sample:digits", "preprocess": mapping, "workers": 0})
    assert settings.preprocess == PreprocessSettings(37, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.25))
    assert settings.to_dict() == {"spec": "sample:digits", "workers": 0, "preprocess": mapping}
    assert parse_settings({"spec": "sample:digits", "preprocess": "none"}).preprocess == NONE
    assert parse_settings({"spec": "x:y", "preprocess": {"mean": 0.5, "std": 0.25}}).preprocess.mean == (0.5,)
    for data in ({"spec": "sample:digits", "preprocess": mapping}, {"spec": "sample:digits", "preprocess": "none"},
                 {"spec": "sample:digits", "preprocess": {"crop": 6}, "image_size": 6}):
        recipe = Recipe.from_text(yaml.safe_dump({"data": data, "stages": []}))
        again = Recipe.from_text(recipe.to_yaml())
        assert again.data == data and parse_settings(again.data).to_dict() == data


@pytest.mark.parametrize("raw, message", [
    ("nothing", "data.preprocess: expected none or a mapping of resize, crop, mean, std, got 'nothing'"),
    ({}, "data.preprocess: expected none or a mapping of resize, crop, mean, std, got an empty mapping"),
    ({"size": 3}, "data.preprocess.size: unknown preprocessing setting (known: crop, mean, resize, std)"),
    ({"resize": 0}, "data.preprocess.resize: must be in [1, 4096], got 0"),
    ({"crop": 32.5}, "data.preprocess.crop: expected a whole number of pixels, got 32.5"),
    ({"crop": True}, "data.preprocess.crop: expected a whole number of pixels, got True"),
    ({"resize": 32, "crop": 40}, "data.preprocess.crop: 40 is larger than resize 32"),
    ({"mean": [0.5]}, "data.preprocess.std: give mean and std together"),
    ({"std": [0.5]}, "data.preprocess.mean: give mean and std together"),
    ({"mean": [0.5, 0.5], "std": [0.2]}, "data.preprocess.std: 1 value(s) but mean has 2"),
    ({"mean": [0.5, "x"], "std": [0.2, 0.2]}, "data.preprocess.mean[1]: expected a finite number, got 'x'"),
    ({"mean": [0.5, float("nan")], "std": [0.2, 0.2]}, "data.preprocess.mean[1]: expected a finite number"),
    ({"mean": [0.5], "std": [0]}, "data.preprocess.std[0]: must be positive"),
    ({"mean": [0.1] * 5, "std": [0.2] * 5}, "data.preprocess.mean: expected a list of 1 to 4 numbers"),
    ({"mean": "0.5, 0.4", "std": [0.2]}, "data.preprocess.mean: expected a list of 1 to 4 numbers"),
])
def test_bad_preprocessing_names_the_field(raw, message):
    with pytest.raises(RecipeError) as exc:
        Recipe.from_dict({"data": {"spec": "sample:digits", "preprocess": raw}, "stages": []})
    assert exc.value.message.startswith(message), exc.value.message


@pytest.mark.parametrize("raw, message", [
    ({"preprocess": "none", "image_size": 32}, "data.image_size: preprocess is none"),
    ({"preprocess": {"crop": 28}, "image_size": 32}, "data.image_size: 32, but preprocess.crop is 28"),
])
def test_image_size_and_preprocessing_that_contradict_are_refused(raw, message):
    with pytest.raises(RecipeError, match=message.replace(".", r"\.")):
        parse_settings({"spec": "sample:digits", **raw})


# --- what the loaders apply ----------------------------------------------------------------------------------------
def test_none_feeds_the_images_as_they_are(tmp_path):
    root = folder(tmp_path / "f", size=(12, 10))
    data = load_data({"spec": f"imagefolder:{root}", "preprocess": "none", "workers": 0})
    assert data.input_shape == (3, 12, 10) and data.preprocessing.to_dict()["source"] == NONE
    x, y = next(iter(data.loader("test", 100)))
    first = data.make("test", 1, False, None).dataset.dataset.samples[int(data.indices["test"][0])][0]
    expected = torch.from_numpy(np.array(Image.open(first).convert("RGB"))).permute(2, 0, 1).float() / 255
    assert torch.allclose(x[0], expected)
    assert describe(data.describe()["preprocessing"]) == ("none: the tensors are ready",
                                                          "pixels scaled to [0, 1]; no resize, crop or normalisation")


def test_none_refuses_images_of_several_sizes_naming_them(tmp_path):
    checked = folder(tmp_path / "a", size=(12, 12), sizes={("light", 9): (14, 12)})     # among those checked on load
    with pytest.raises(SpecError, match=r"preprocess none needs images of one size, but .* is 12x12 and .*09\.png is 12x14"):
        load_data({"spec": f"imagefolder:{checked}", "preprocess": "none", "workers": 0})
    with pytest.raises(SpecError, match="leave the size out of the spec"):
        load_data({"spec": f"imagefolder:{checked}:8", "preprocess": "none"})
    later = folder(tmp_path / "b", size=(12, 12), sizes={("light", 3): (14, 12)})       # found when it is read
    data = load_data({"spec": f"imagefolder:{later}", "preprocess": "none", "workers": 0, "val_fraction": 0})
    with pytest.raises(SpecError) as exc:
        [batch for split in ("train", "test") for batch in data.loader(split, 4)]
    assert exc.value.message == (f"{later / 'light' / '03.png'}: 12x14 pixels; with preprocess none every image must "
                                 "be 12x12 (or set preprocess's resize and crop)")


def test_set_preprocessing_is_applied_and_the_rest_comes_from_the_default(tmp_path):
    root = folder(tmp_path / "f", size=(20, 30))
    data = load_data({"spec": f"imagefolder:{root}", "workers": 0, "preprocess": {"resize": 20, "crop": 16,
                                                                                  "mean": [0.5], "std": [0.25]}})
    x, _ = next(iter(data.loader("test", 100)))
    assert data.input_shape == (3, 16, 16) and x.shape[1:] == (3, 16, 16)
    path = data.make("test", 1, False, None).dataset.dataset.samples[int(data.indices["test"][0])][0]
    pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255
    assert pixels.shape == (3, 20, 30)
    assert torch.allclose(x[0], (pixels[:, 2:18, 7:23] - 0.5) / 0.25, atol=1e-5)     # 20 px already: only the crop
    used = data.describe()["preprocessing"]
    assert used == {"source": "yours", "size": 16, "resize": 20, "crop": 16, "mean": [0.5], "std": [0.25],
                    "interpolation": "bilinear"}
    default = load_data({"spec": f"imagefolder:{root}", "workers": 0, "image_size": 32}).describe()["preprocessing"]
    assert (default["resize"], default["crop"], default["mean"], default["source"], default["rest"]) == \
        (37, 32, [0.485, 0.456, 0.406], "yours", "default")
    digits = load_data({"spec": "sample:digits", "preprocess": "none"})
    x, _ = next(iter(digits.test))
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.max()) > 0.9         # pixels 0..16 -> [0, 1]
    with pytest.raises(SpecError, match="data.preprocess.mean: 3 values for 1-channel images"):
        load_data({"spec": "sample:digits", "preprocess": {"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]}})


# --- the same numbers in the model panel, inspect and a run ---------------------------------------------------------
def test_the_model_panel_inspect_and_a_run_measure_an_image_folder_alike(tmp_path):
    from workbench.core.archs import build_arch
    root = folder(tmp_path / "f")
    weights = tmp_path / "mine.pth"
    torch.manual_seed(1)
    torch.save(build_arch("mlp:hidden=8", (3, 32, 32), 2).state_dict(), weights)
    data = {"spec": f"imagefolder:{root}", "image_size": 32, "workers": 2, "eval_batch_size": 7}
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "same", "model": str(weights), "data": data, "stages": []}))
    panel = open_model(str(weights), parse_settings(data), arch="arch:mlp:hidden=8")
    assert panel["input_shape"] == [3, 32, 32] and panel["preprocessing"]["resize"] == 37 and not panel["warning"]
    run = run_cli("run", str(recipe), "--arch", "arch:mlp:hidden=8", "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["snapshots"][0]["accuracy"] == panel["accuracy"]
    assert report["data_settings"]["preprocessing"] == panel["preprocessing"]
    inspect = run_cli("inspect", str(weights), "--arch", "arch:mlp:hidden=8", "--data", str(recipe), "--json")
    assert inspect.returncode == 0, inspect.stderr[-2000:]
    assert json.loads(inspect.stdout)["accuracy"] == panel["accuracy"]
    # the spec alone means the default 224 px, which these weights do not fit: refused, never measured at the wrong size
    with pytest.raises(BadInput):
        open_model(str(weights), DataSettings(f"imagefolder:{root}"), arch="arch:mlp:hidden=8")


def test_inspect_data_takes_a_mapping_and_refuses_a_bad_one(tmp_path):
    root = folder(tmp_path / "f", size=(8, 8))
    ok = run_cli("inspect", "arch:mlp:hidden=4", "--data", f'{{spec: "imagefolder:{root}", preprocess: none, workers: 0}}')
    assert ok.returncode == 0, ok.stderr
    assert "preprocessing (none: the tensors are ready)" in ok.stdout and "input 3x8x8" in ok.stdout
    bad = run_cli("inspect", "arch:mlp:hidden=4", "--data", f'{{spec: "imagefolder:{root}", preprocess: {{crop: -1}}}}')
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "workbench: error: data.preprocess.crop: must be in [1, 4096], got -1"]
    empty = tmp_path / "nodata.yaml"
    empty.write_text("stages: []\n")
    none = run_cli("inspect", "arch:mlp:hidden=4", "--data", str(empty))
    assert none.returncode == 2 and "the recipe has no data: to measure with" in none.stderr
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    blocked = run_cli("inspect", "arch:mlp:hidden=4", "--data", str(fifo))
    assert blocked.returncode == 2 and "cannot read recipe (a folder, FIFO or device" in blocked.stderr
