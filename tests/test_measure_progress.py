"""Measuring a snapshot shows which batch it is at and stops between batches when cancelled."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.core import events as E
from workbench.core import runner
from workbench.core.errors import Cancelled
from workbench.core.measure import measure_accuracy
from workbench.core.metrics import accuracy
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run


def test_the_baseline_measurement_reports_every_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "PROGRESS_INTERVAL", 0.0)        # forward every Progress, not one per 50 ms
    recipe = Recipe([], model="arch:mlp:hidden=16", data={"spec": "sample:digits", "eval_batch_size": 40})
    evs = list(Run(recipe, RunOptions(out_dir=tmp_path)).events())
    assert isinstance(evs[-1], E.RunFinished) and evs[-1].ok
    texts = [e.text for e in evs if isinstance(e, E.Progress) and e.text.startswith("measuring snapshot 0")]
    test, val = -(-359 // 40), -(-144 // 40)                     # 9 test batches, 4 val batches
    assert texts[0] == "measuring snapshot 0 (baseline)"
    expected = [f"measuring snapshot 0 (baseline): test {i}/{test} batches" for i in range(1, test + 1)]
    expected += [f"measuring snapshot 0 (baseline): val {i}/{val} batches" for i in range(1, val + 1)]
    assert [t for t in texts if ": " in t] == expected
    fractions = [e.done / e.total for e in evs if isinstance(e, E.Progress) and ": " in e.text]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    snap = next(e for e in evs if isinstance(e, E.SnapshotSaved))
    assert 0 <= snap.metrics["accuracy"] <= 1 and snap.metrics["val_accuracy"] is not None


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x)


class _Data:
    def __init__(self, batches):
        self.test, self.val = batches, batches
        self.splits = {"train": 0, "val": 1, "test": 1}


class _Session:
    """What measure_accuracy reads of a session; Stop is pressed after `stop_after` checks."""
    def __init__(self, model, data, stop_after):
        self.model, self.data, self.device, self.checks, self.stop_after = model, data, "cpu", 0, stop_after

    def check_cancel(self):
        self.checks += 1
        if self.checks > self.stop_after:
            raise Cancelled("stopped by the user")


def _batches(n):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(5, 4, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(n)]


def test_cancel_stops_between_batches():
    model, batches = _Counting(), _batches(20)
    session = _Session(model, _Data(batches), stop_after=3)
    seen = []
    with pytest.raises(Cancelled):
        for event in measure_accuracy(session, "measuring"):
            seen.append(event.text)
    assert model.calls == 3                                        # 3 of 40 batches ran, then Stop ended it
    assert seen[-1] == "measuring: test 3/20 batches"


def test_the_measured_values_equal_a_plain_accuracy():
    model, batches = _Counting(), _batches(6)
    gen = measure_accuracy(_Session(model, _Data(batches), stop_after=10**6), "m")
    while True:
        try:
            next(gen)
        except StopIteration as end:
            test, val = end.value
            break
        assert not torch.is_inference_mode_enabled()             # the caller runs outside inference mode
    assert test == val == accuracy(model, batches)
