"""A GUI run on an image folder whose loader starts worker processes: the run's own process (the real child-run path,
not in_process) may have children, and the run gives `workbench run`'s numbers on the same recipe."""
import json
import signal
from pathlib import Path

import numpy as np
import yaml
from cli_helpers import run_cli
from waits import WAIT_MS

from .helpers import wait_run


def image_folder(root: Path, per_class: int = 12) -> Path:
    """Two classes of 8x8 PNGs a small MLP tells apart: dark and light, with noise."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for label, base in (("dark", 50), ("light", 200)):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(base + rng.normal(0, 30, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:02d}.png")
    return root


def test_a_gui_run_on_an_image_folder_with_loader_workers_gives_the_cli_numbers(qtbot, tmp_path, messages):
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow
    make_app()
    spec = f"imagefolder:{image_folder(tmp_path / 'images')}"
    recipe = {"name": "folder-workers", "model": "arch:mlp:hidden=16", "seed": 0,
              "data": {"spec": spec, "workers": 2, "image_size": 8, "batch_size": 8},
              "stages": [{"kind": "train", "epochs": 2, "optimizer": "adam", "lr": 0.01}]}
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    w = MainWindow(model="arch:mlp:hidden=16", data=spec, recipe=str(path), runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.browser.info is not None and not w.runs.loading(), timeout=WAIT_MS)
    assert not w.control.in_process                       # the run's own process, as a user's run
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    gui = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert gui["status"] == "finished", gui.get("error")
    assert gui["data_settings"]["workers"] == 2 and gui["data_settings"]["image_size"] == 8
    # the model panel measured the folder with workers off the GUI thread: torch's SIGCHLD handler (installed by a
    # loader iterated on the main thread) would raise a dying worker's error anywhere in the GUI thread
    assert "_set_SIGCHLD_handler" not in getattr(signal.getsignal(signal.SIGCHLD), "__qualname__", "")
    proc = run_cli("run", str(path), "--out", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert [s["stage"] for s in gui["snapshots"]] == [s["stage"] for s in cli["snapshots"]] == ["baseline", "train"]
    for key in ("accuracy", "val_accuracy", "params"):
        assert [s[key] for s in gui["snapshots"]] == [s[key] for s in cli["snapshots"]], key
    assert all(s["accuracy"] is not None and s["val_accuracy"] is not None for s in gui["snapshots"])
