"""Cancelling a prune stage stops it within a second and leaves the previous snapshot as the model."""
import json
import threading
import time

import pytest
import torch

from workbench.core.events import Progress, StageFailed, StageStarted
from workbench.core.recipe import Recipe
from workbench.core.runner import Run
from workbench.core.snapshots import load_snapshot


@pytest.mark.parametrize("prune", [
    "{kind: prune, sparsity: 0.9, schedule: iterative, steps: 5, finetune_epochs: 3}",
    "{kind: prune, method: activation, structured: true, sparsity: 0.5, schedule: gradual, steps: 4, finetune_epochs: 3}",
], ids=["unstructured", "structured"])
def test_cancel_during_pruning_keeps_previous_snapshot(tmp_path, prune):
    run = Run(Recipe.from_text(f"model: sample:digits_mlp\nstages:\n  - {{kind: train, epochs: 1}}\n  - {prune}\n"),
              out_dir=tmp_path / "run")
    cancelled_at = None
    failed = None
    in_prune = False
    for event in run.events():
        if isinstance(event, StageStarted):
            in_prune = event.kind == "prune"
        if in_prune and isinstance(event, Progress) and cancelled_at is None:
            cancelled_at = time.monotonic()
            threading.Thread(target=run.cancel).start()   # as the GUI would, from another thread
        if isinstance(event, StageFailed):
            failed = event
            stopped_at = time.monotonic()
    assert failed is not None and failed.cancelled and failed.index == 1
    assert stopped_at - cancelled_at < 1.0
    session = run.session
    assert len(session.snapshot_paths) == 2      # baseline + train; no prune snapshot
    previous = load_snapshot(session.snapshot_paths[-1]).module.state_dict()
    for name, value in session.model.state_dict().items():
        assert value.shape == previous[name].shape and torch.equal(value, previous[name]), name
    assert session.masks == {}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "cancelled" and report["current_snapshot"] == "01-train"
