"""A GUI run and `workbench run` of the same conv-net recipe give the same accuracies (the run's process uses as many
torch threads as the command line does)."""
import json
from pathlib import Path

import yaml
from cli_helpers import run_cli

from .helpers import wait_run

RECIPE = {"name": "same-numbers", "model": "sample:digits_resnet", "data": "sample:digits", "seed": 3, "stages": [
    {"kind": "prune", "method": "l1", "structured": True, "sparsity": 0.5, "schedule": "oneshot", "finetune_epochs": 1,
     "lr": 0.002},
    {"kind": "train", "label": "fine-tune pruned", "epochs": 1, "optimizer": "adam", "lr": 0.001}]}


def test_gui_and_cli_runs_of_a_recipe_give_equal_accuracies(make_window, qtbot, tmp_path, messages):
    path = tmp_path / "same.yaml"
    path.write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    w = make_window(model="sample:digits_resnet", recipe=str(path))
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    gui = json.loads((Path(w.control.out_dir) / "report.json").read_text())
    proc = run_cli("run", str(path), "--out", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert gui["status"] == cli["status"] == "finished"
    assert gui["environment"]["threads"] == cli["environment"]["threads"]
    assert [s["stage"] for s in gui["snapshots"]] == [s["stage"] for s in cli["snapshots"]] == ["baseline", "prune", "train"]
    assert [s["accuracy"] for s in gui["snapshots"]] == [s["accuracy"] for s in cli["snapshots"]]
    assert [s["params"] for s in gui["snapshots"]] == [s["params"] for s in cli["snapshots"]]
    assert gui["snapshots"][1]["params"] < gui["snapshots"][0]["params"] / 2      # channels really were removed
