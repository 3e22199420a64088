"""Your own model in a recipe: `model:` as a mapping {spec, arch, trust, replace_head}, and a checkpoint's head that
does not match the data's classes refused unless replace_head (never replaced silently, never called pretrained)."""
import pytest
import torch
from cli_helpers import run_cli

from workbench.cli import _parser
from workbench.core.errors import BadInput, RecipeError
from workbench.core.recipe import Recipe
from workbench.core.specs import load_model

ARCH = "arch:mlp:hidden=32"
SHAPE = (1, 8, 8)           # sample:digits


def _save(path, classes, arch=ARCH, shape=SHAPE):
    module = load_model(arch, shape, classes, seed=1).module
    torch.save(module.state_dict(), path)
    return module.state_dict()


def test_the_mapping_round_trips_and_the_plain_string_stays(tmp_path):
    text = "model:\n  spec: my.pth\n  arch: torchvision:resnet18\n  replace_head: true\nstages: []\n"
    r = Recipe.from_text(text)
    assert (r.model, r.arch, r.trust, r.replace_head) == ("my.pth", "torchvision:resnet18", False, True)
    assert r.to_dict()["model"] == {"spec": "my.pth", "arch": "torchvision:resnet18", "replace_head": True}
    for suffix in (".yaml", ".json"):
        r.save(tmp_path / f"r{suffix}")
        again = Recipe.load(tmp_path / f"r{suffix}")
        assert again.to_dict() == r.to_dict() and again.arch == "torchvision:resnet18"
    plain = Recipe.from_text("model: sample:digits_mlp\nstages: []\n")
    assert plain.to_dict()["model"] == "sample:digits_mlp" and plain.arch is None


@pytest.mark.parametrize("model,message", [
    ("{arch: x}", "model.spec: missing"),
    ("{spec: a.pth, archh: x}", "model.archh: unknown field"),
    ("{spec: a.pth, trust: yes-please}", "model.trust: expected true or false"),
    ("{spec: 3}", "model.spec: expected text"),
    ("[a, b]", "model: expected a spec or a mapping"),
])
def test_a_bad_mapping_names_the_field(model, message):
    with pytest.raises(RecipeError, match=message.replace(".", r"\.")):
        Recipe.from_text(f"model: {model}\nstages: []\n")


def test_a_checkpoint_for_other_classes_is_refused_naming_the_layer_and_both_counts(tmp_path):
    saved = _save(tmp_path / "five.pth", 5)
    with pytest.raises(BadInput, match=r"fc2: the checkpoint's head has 5 classes, the data has 10; pass "
                                       r"--replace-head \(or replace_head: true\) to train a new head"):
        load_model(str(tmp_path / "five.pth"), SHAPE, 10, arch=ARCH)
    loaded = load_model(str(tmp_path / "five.pth"), SHAPE, 10, arch=ARCH, replace_head=True)
    notes = " ".join(loaded.meta["notes"])
    assert "fc2 (5 -> 10 classes, as asked)" in notes and "pretrained" not in notes
    state = loaded.module.state_dict()
    assert torch.equal(state["fc1.weight"], saved["fc1.weight"]) and state["fc2.weight"].shape[0] == 10


def test_without_data_the_checkpoint_keeps_its_own_head(tmp_path):
    """The issue's case: the data did not fit, the model was opened without it and a 10-class head became 1000."""
    arch, shape = "arch:resnet8:width=4", (3, 16, 16)
    saved = _save(tmp_path / "r.pth", 7, arch, shape)
    loaded = load_model(str(tmp_path / "r.pth"), arch=arch)
    assert all(torch.equal(v, saved[k]) for k, v in loaded.module.state_dict().items())
    assert loaded.meta.get("notes", []) == [] and loaded.module.eval()(torch.zeros(1, *shape)).shape == (1, 7)


def _recipe(tmp_path, model: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(f"model: {model}\ndata: sample:digits\nstages:\n  - kind: evaluate\n")
    return str(path)


def test_cli_runs_a_recipe_whose_model_is_a_mapping(tmp_path):
    _save(tmp_path / "ten.pth", 10)
    proc = run_cli("run", _recipe(tmp_path, f"{{spec: {tmp_path / 'ten.pth'}, arch: '{ARCH}'}}"),
                   "--out", str(tmp_path / "ok"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ok" / "report.json").exists()
    bare = run_cli("run", _recipe(tmp_path, str(tmp_path / "ten.pth")), "--out", str(tmp_path / "bare"))
    assert bare.returncode == 2 and "name its architecture with --arch" in bare.stderr


def test_cli_refuses_another_head_unless_replace_head(tmp_path):
    _save(tmp_path / "five.pth", 5)
    mapping = f"{{spec: {tmp_path / 'five.pth'}, arch: '{ARCH}'}}"
    refused = run_cli("run", _recipe(tmp_path, mapping), "--out", str(tmp_path / "no"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "fc2: the checkpoint's head has 5 classes, the data has 10" in refused.stderr
    assert not (tmp_path / "no").exists()
    flag = run_cli("run", _recipe(tmp_path, mapping), "--replace-head", "--out", str(tmp_path / "flag"), "--quiet")
    assert flag.returncode == 0, flag.stderr
    in_recipe = mapping[:-1] + ", replace_head: true}"
    ok = run_cli("run", _recipe(tmp_path, in_recipe), "--out", str(tmp_path / "yes"), "--quiet")
    assert ok.returncode == 0, ok.stderr


def test_gui_and_the_headless_commands_take_arch_and_replace_head():
    p = _parser()
    assert p.parse_args(["gui", "--arch", "torchvision:resnet18"]).arch == "torchvision:resnet18"
    for command in (["inspect", "x.pth"], ["run", "r.yaml"], ["export", "x.pth", "--format", "onnx", "--out", "o"]):
        assert p.parse_args([*command, "--replace-head"]).replace_head is True


def test_a_recipes_trust_never_grants_trust(tmp_path):
    """`trust: true` in a recipe records the user's choice, but a recipe can come from anyone: the pickled model it
    names is still refused (its payload does not run) until --trust is given on the command line."""
    marker = tmp_path / "ran"
    module = load_model(ARCH, SHAPE, 10, seed=1).module
    module.payload = _Payload(str(marker))
    torch.save(module, tmp_path / "full.pt")
    recipe = _recipe(tmp_path, f"{{spec: {tmp_path / 'full.pt'}, trust: true}}")
    refused = run_cli("run", recipe, "--out", str(tmp_path / "no"), "--quiet")
    assert refused.returncode == 2 and "--trust" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "no").exists()


class _Payload:
    """Unpickling it writes a marker file: the stand-in for code a hostile pickle would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
