"""Cancelling a prune stage stops it at its next event and leaves the previous snapshot as the model."""
import json
import threading

import pytest
import torch

from workbench.core.events import Progress, StageFailed, StageStarted
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run
from workbench.core.snapshots import load_snapshot


@pytest.mark.parametrize("prune", [
    "{kind: prune, sparsity: 0.9, schedule: iterative, steps: 5, finetune_epochs: 3}",
    "{kind: prune, method: activation, structured: true, sparsity: 0.5, schedule: gradual, steps: 4, finetune_epochs: 3}",
], ids=["unstructured", "structured"])
def test_cancel_during_pruning_keeps_previous_snapshot(tmp_path, prune):
    run = Run(Recipe.from_text(f"model: sample:digits_mlp\nstages:\n  - {{kind: train, epochs: 1}}\n  - {prune}\n"),
              RunOptions(out_dir=tmp_path / "run"))
    after_cancel = None
    in_prune = False
    for event in run.events():
        if after_cancel is not None:
            after_cancel.append(event)
        if isinstance(event, StageStarted):
            in_prune = event.kind == "prune"
        if in_prune and isinstance(event, Progress) and after_cancel is None:
            worker = threading.Thread(target=run.cancel)   # as the GUI would, from another thread
            worker.start()
            worker.join()
            after_cancel = []
    failed = after_cancel[0]                            # the stage stops at its very next event
    assert isinstance(failed, StageFailed) and failed.cancelled and failed.index == 1
    session = run.session
    assert len(session.snapshot_paths) == 2      # baseline + train; no prune snapshot
    previous = load_snapshot(session.snapshot_paths[-1]).module.state_dict()
    for name, value in session.model.state_dict().items():
        assert value.shape == previous[name].shape and torch.equal(value, previous[name]), name
    assert session.masks == {}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "cancelled" and report["current_snapshot"] == "01-train"
