"""Several processes from the GUI: the process count next to the device, a local torchrun run followed like any
other, and Run ▸ Cluster command… (the recipe saved, the torchrun commands shown)."""
import dataclasses
import json
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from waits import WAIT_MS

from workbench.core.command_run import CommandRun, cluster_commands
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.ui import settings

from .helpers import wait_run

PRUNE = [{"kind": "prune", "sparsity": 0.5, "finetune_epochs": 1}]


def test_cluster_commands_have_the_readme_forms():
    one, many, local = cluster_commands("r.yaml", "runs/big", 8, nodes=2, host="head", run_id="job1")
    assert one[1] == "torchrun --nproc-per-node 8 -m workbench run r.yaml --out runs/big --device cuda"
    assert many[1] == ("torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint head:29500 "
                       "--rdzv-id job1 \\\n    -m workbench run r.yaml --out runs/big --device cuda")
    assert local[1] == "workbench run r.yaml --nproc 8 --out runs/big --device cuda"
    quoted = cluster_commands("my runs/r.yaml", "o", 2, device="cpu", options=RunOptions(arch="lenet5", trust=True))
    assert quoted[0][1] == "torchrun --nproc-per-node 2 -m workbench run 'my runs/r.yaml' --out o --device cpu --arch lenet5 --trust"


@pytest.mark.slow
def test_two_processes_from_the_toolbar(make_window, qtbot, messages):
    w = make_window(stages=PRUNE)
    spin = w.findChild(type(w.process_count), "processCount")
    assert spin is w.process_count and spin.isEnabled() and spin.value() == 1 and spin.maximum() >= 8
    spin.setValue(2)
    w.device_combo.setCurrentText("cpu")
    assert w.status_device.text() == "device: cpu × 2 processes"
    assert w.start_run()
    assert isinstance(w.control.worker.run, CommandRun) and "--nproc" in w.control.worker.run.argv
    assert not spin.isEnabled() and not w.device_combo.isEnabled()      # (c) fixed while the run goes
    qtbot.waitUntil(lambda: len(w.runs.snapshots) >= 1, timeout=WAIT_MS)   # the baseline arrives through the events
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    assert spin.isEnabled() and int(settings.value("processes")) == 2
    report = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    assert report["status"] == "finished" and report["environment"]["world_size"] == 2
    assert report["environment"]["backend"] == "gloo"
    assert sorted(r["stage"] for r in w.runs.snapshots.values()) == ["baseline", "prune"]
    assert all(Path(p).is_dir() for p in w.runs.snapshots)
    assert "finished" in w.runs.runs[w.control.out_dir].text(0)
    assert w.run_panel.overall_bar.value() == w.run_panel.overall_bar.maximum()


def test_cluster_command_dialog_saves_the_recipe_and_shows_torchrun(make_window, qtbot, tmp_path):
    w = make_window(stages=PRUNE)
    assert w.acts["cluster_command"] in w.menuBar().actions()[2].menu().actions()     # Run ▸ Cluster command…
    path = tmp_path / "cluster" / "recipe.yaml"
    dialog = w.cluster_command_dialog(str(path))
    qtbot.addWidget(dialog)
    saved = Recipe.load(path)
    assert saved.model == "sample:digits_mlp" and saved.data == "sample:digits"
    assert saved == dataclasses.replace(w.doc.recipe(), model=saved.model, data=saved.data)
    dialog.processes.setValue(4)
    dialog.nodes.setValue(3)
    dialog.host.setText("node0")
    text = dialog.text.toPlainText()
    assert dialog.text.isReadOnly()
    out = str(Path(w.state.runs_dir) / "test")
    assert f"torchrun --nproc-per-node 4 -m workbench run {path} --out {out} --device cuda" in text
    assert ("torchrun --nnodes 3 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint node0:29500 --rdzv-id test \\\n"
            f"    -m workbench run {path} --out {out} --device cuda") in text
    assert f"workbench run {path} --nproc 4 --out {out} --device cuda" in text
    dialog.device.setCurrentText("cpu")
    assert "--device cpu" in dialog.text.toPlainText() and "gloo" in dialog.text.toPlainText()
    dialog.copy()
    assert QGuiApplication.clipboard().text() == dialog.text.toPlainText()
