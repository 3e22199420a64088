"""The `auto` stage's progress bar only moves forward (its sub-stages each start again at 0 %), and its log states
the target in the target's units, never the nested prune stage's `sparsity: 0`."""
from __future__ import annotations

import pytest
from prune_helpers import assert_ok, run_recipe

from workbench.core import runner
from workbench.core.auto.progress import TABLE_SHARE, Overall, describe_target, fmt_cost
from workbench.core.events import Log, Progress, SnapshotSaved, StageStarted


def _fractions(events):
    return [e.done / e.total for e in events if isinstance(e, Progress)]


def test_sub_stage_progress_maps_onto_one_forward_bar():
    overall = Overall(epochs=10, max_candidates=3)

    def stage():
        for i in range(5):
            yield Progress(i + 1, 5, f"options for fc{i}")
        for spent, epochs in ((0, 4), (4, 4)):
            overall.candidate(spent, epochs)
            for _ in range(2):                       # a prune step and its fine-tuning: each 0 -> 100 %
                for k in (0, 1, 2):
                    yield Progress(k, 2, "fine-tune")
            yield Log("info", "candidate done")
    events = list(overall.events(stage()))
    fractions = _fractions(events)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert fractions[4] == pytest.approx(TABLE_SHARE)                      # the option table: its share
    assert fractions[5:11][-1] == pytest.approx(TABLE_SHARE + (1 - TABLE_SHARE) * 0.4)   # 4 of 10 epochs
    texts = [e.text for e in events if isinstance(e, Progress)]
    assert texts[0] == "option table: options for fc0" and texts[5] == "candidate 1: fine-tune"
    assert texts[11] == "candidate 2: fine-tune" and any(isinstance(e, Log) for e in events)


def test_without_an_epoch_budget_the_candidates_are_the_measure():
    overall = Overall(epochs=0, max_candidates=4)
    overall.candidate(0, 0)
    overall.candidate(0, 0)
    assert overall.map(Progress(1, 2)).done == pytest.approx(TABLE_SHARE + (1 - TABLE_SHARE) * 1.5 / 4)


def test_target_words_in_the_targets_units():
    assert describe_target("latency", 0.5, 1.23, 0.615) == \
        "target: 0.50 of the stage input's latency (1.23 ms -> 0.615 ms)"
    assert describe_target("ratio", 40, 212000, 5300) == \
        "target: 40x smaller than the baseline's fp32 bytes (212,000 B -> 5,300 B)"
    assert describe_target("params", 0.2, 50000, 10000) == \
        "target: 0.20 of the stage input's non-zero parameters (50,000 -> 10,000)"
    assert fmt_cost("latency", 2.0, 1.0) == "1 ms (0.500 of the stage input)" and fmt_cost("ratio", 1, None) == "n/a"


def test_a_real_auto_stage_moves_forward_and_says_its_target(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "PROGRESS_INTERVAL", 0.0)        # every Progress, not one per 50 ms
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - {kind: auto, target: {params: 0.5}, methods: [prune], max_drop: 0.2, epochs: 2, finetune_epochs: 1,
     prune_steps: 1, push: false, retries: 0, max_candidates: 2, sparsities: [0.0, 0.5, 0.7, 0.9]}
""", tmp_path)
    assert_ok(events)
    start = next(i for i, e in enumerate(events) if isinstance(e, StageStarted))
    end = next(i for i, e in enumerate(events) if isinstance(e, SnapshotSaved) and e.stage == "auto")
    stage = events[start:end]
    fractions = [f for e, f in zip((e for e in stage if isinstance(e, Progress)), _fractions(stage))
                 if not e.text.startswith("measuring")]
    assert len(fractions) > 10 and fractions == sorted(fractions) and fractions[-1] == 1.0
    logs = [e.text for e in stage if isinstance(e, Log)]
    params = run.report.data["snapshots"][0]["nonzero_params"]
    assert logs[0].startswith(f"auto: target: 0.50 of the stage input's non-zero parameters ({params:,} -> ")
    steps = [t for t in logs if t.startswith("pruning step")]
    assert steps and all("per-layer overrides" in t and "target 0.00%" not in t for t in steps)
