"""A user's own model end to end in the GUI (issue 20): a state dict trained outside the workbench on their own image
folder, opened with its architecture on that folder (loader workers, image size), prune -> fine-tune -> ONNX int8
export -> int8, run through the real child-run path; the recipe saved; a restart and Recent reopen the model with its
architecture and data settings; `workbench run` of the saved recipe gives the GUI's numbers."""
import json
from pathlib import Path

import torch
import yaml
from cli_helpers import run_cli
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from waits import WAIT_MS

from workbench.core.archs import build_arch
from workbench.ui import settings
from workbench.ui.dialogs.open_model import OpenModelDialog

from .helpers import wait_run
from .test_image_folder_run import image_folder

ARCH, SIZE, WORKERS = "arch:lenet5", 8, 2
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
NUMBERS = ("accuracy", "val_accuracy", "params", "compressed_bytes", "compression_ratio")


def train_my_model(folder: Path, path: Path) -> Path:
    """What the user did before opening the workbench: torchvision's ImageFolder, their transform, a few steps of
    Adam, `torch.save(model.state_dict())` (a bare state dict: tensors only, no architecture)."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    data = ImageFolder(str(folder), T.Compose([T.Resize(9), T.CenterCrop(SIZE), T.ToTensor(), T.Normalize(*IMAGENET)]))
    x, y = torch.stack([data[i][0] for i in range(len(data))]), torch.tensor(data.targets)
    torch.manual_seed(0)
    model = build_arch(ARCH.removeprefix("arch:"), (3, SIZE, SIZE), len(data.classes))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(25):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert float((model(x).argmax(1) == y).float().mean()) > 0.9       # it learned dark vs light
    torch.save(model.state_dict(), path)
    return path


def wait_model(qtbot, w, spec: str, messages) -> None:
    """Until `spec` is open and measured (or a message box says why not: the test fails at once with it)."""
    qtbot.waitUntil(lambda: bool(messages) or w.model_spec == spec and w.loader.requested is None, timeout=WAIT_MS)
    assert not messages, messages.texts()


def open_my_model(w, qtbot, monkeypatch, messages, path: Path) -> None:
    """File ▸ Open model…, the File tab: the path and its architecture typed in, Open."""
    def fill(dialog):
        dialog.tabs.setCurrentIndex(dialog.tabs.count() - 1)
        dialog.path_edit.setText(str(path))
        dialog.arch_edit.setText(ARCH)
        return 1
    monkeypatch.setattr(OpenModelDialog, "exec", fill)
    w.acts["open_model"].trigger()
    wait_model(qtbot, w, str(path), messages)


def open_my_data(w, qtbot, messages, spec: str) -> None:
    """File ▸ Open data…: the folder, 2 loader workers, 8 px images, OK; the model is measured again on them."""
    dialog = w.open_data_dialog()
    dialog.combo.setCurrentText(spec)
    dialog.spins["workers"].setValue(WORKERS)
    dialog.spins["image_size"].setValue(SIZE)
    dialog.accept()
    qtbot.waitUntil(lambda: bool(messages) or w.browser.info is not None and w.browser.info.get("data") == spec
                    and w.loader.requested is None, timeout=WAIT_MS)


def build_pipeline(w) -> None:
    """The stages through the pipeline editor: its Remove action, the Add stage menu, each stage's form."""
    w.editor.cards.setCurrentRow(0)
    while w.doc.stages:
        w.editor.actions_by_name["Remove"].trigger()
    add = {a.data(): a for a in w.editor.palette_menu.actions()}
    add["prune"].trigger()
    form = w.editor.form
    form.editors["structured"].inner.setChecked(True)
    form.editors["finetune_epochs"].inner.setValue(0)
    add["train"].trigger()
    w.editor.form.editors["epochs"].inner.setValue(1)
    add["export"].trigger()
    formats = w.editor.form.editors["formats"].inner
    for item in (formats.item(i) for i in range(formats.count())):
        item.setCheckState(Qt.CheckState.Checked if item.text() == "onnx_int8" else Qt.CheckState.Unchecked)
    add["quantize"].trigger()
    w.editor.form.editors["method"].inner.setCurrentText("int8_static")


def test_my_model_on_my_images_end_to_end(qtbot, tmp_path, messages, monkeypatch):
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow
    make_app()
    folder = image_folder(tmp_path / "images", per_class=40)
    spec, weights = f"imagefolder:{folder}", train_my_model(folder, tmp_path / "mine.pth")
    runs = str(tmp_path / "runs")
    w = MainWindow(model="arch:mlp:hidden=8", data=spec, runs_dir=runs)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.browser.info is not None and not w.runs.loading(), timeout=WAIT_MS)
    open_my_data(w, qtbot, messages, spec)
    open_my_model(w, qtbot, monkeypatch, messages, weights)
    assert w.state.model_options["arch"] == ARCH and w.browser.info["total"]["params"] == sum(
        t.numel() for t in torch.load(weights).values())
    build_pipeline(w)
    assert [s["kind"] for s in w.doc.stages] == ["prune", "train", "export", "quantize"] and not w.doc.all_errors()
    assert w.editor.status.text().startswith("✓")                      # the order preflight accepts it

    # run: the window's own run process (not in_process), its loaders with 2 workers
    assert not w.control.in_process
    w.acts["run"].trigger()
    assert w.control.running()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    gui = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert gui["status"] == "finished", gui.get("error")
    assert gui["data_settings"]["workers"] == WORKERS and gui["data_settings"]["image_size"] == SIZE
    assert [s["stage"] for s in gui["snapshots"]] == ["baseline", "prune", "train", "quantize"]   # export: a file
    base, pruned = gui["snapshots"][0], gui["snapshots"][1]
    assert base["accuracy"] >= 0.9        # the user's own weights and head, measured as they were trained
    assert pruned["params"] < base["params"] and base["params"] == w.state.model_info["total"]["params"]
    assert all(s[k] is not None for s in gui["snapshots"] for k in NUMBERS)
    exports = {e["format"]: e for e in gui["exports"]}
    assert set(exports) == {"onnx_int8"} and exports["onnx_int8"]["verified"]
    assert 0.0 <= exports["onnx_int8"]["accuracy"] <= 1.0 and (Path(w.control.out_dir) / exports["onnx_int8"]["path"]).is_file()

    # File ▸ Save recipe as…: the whole model (spec + architecture) and the data settings
    saved = tmp_path / "mine.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(saved), "YAML (*.yaml *.yml)"))
    w.acts["save_recipe_as"].trigger()
    recipe = yaml.safe_load(saved.read_text())
    assert recipe["model"] == {"spec": str(weights), "arch": ARCH}
    assert recipe["data"] == {"spec": spec, "workers": WORKERS, "image_size": SIZE}
    assert [s["kind"] for s in recipe["stages"]] == ["prune", "train", "export", "quantize"]

    # a restart: no --model, the same settings; the model comes back with its architecture and its data settings
    w.close()
    restarted = MainWindow(runs_dir=runs)
    qtbot.addWidget(restarted)
    wait_model(qtbot, restarted, str(weights), messages)
    assert restarted.state.model_options["arch"] == ARCH and restarted.data_spec == spec
    assert (restarted.data_settings().workers, restarted.data_settings().image_size) == (WORKERS, SIZE)
    assert restarted.browser.info["total"]["params"] == base["params"]
    # File ▸ Recent models ▸ mine.pth, after another model
    restarted.open_model("arch:mlp:hidden=8")
    wait_model(qtbot, restarted, "arch:mlp:hidden=8", messages)
    assert settings.recent("models")[:2] == ["arch:mlp:hidden=8", str(weights)]
    next(a for a in restarted.menus["recent_models"].actions() if a.text() == str(weights)).trigger()
    wait_model(qtbot, restarted, str(weights), messages)
    assert restarted.state.model_options["arch"] == ARCH and restarted.browser.info["total"]["params"] == base["params"]
    assert restarted.data_settings().workers == WORKERS

    # `workbench run` of the saved recipe: the GUI's numbers, snapshot by snapshot, and the export's accuracy
    proc = run_cli("run", str(saved), "--out", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert [s["stage"] for s in cli["snapshots"]] == [s["stage"] for s in gui["snapshots"]]
    for key in NUMBERS:
        assert [s[key] for s in gui["snapshots"]] == [s[key] for s in cli["snapshots"]], key
    assert [e["accuracy"] for e in cli["exports"]] == [exports["onnx_int8"]["accuracy"]]
