"""Channel counts the hardware likes (core/pruning/rounding.py): structured pruning keeps channel counts in
multiples of `round_to`, and `round_to: auto` picks the multiple whose pruned copy measures fastest on a
depthwise-heavy model. Which multiple wins is a measurement, never asserted; the counts and the replay are."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
import torch
import torchvision
from prune_helpers import assert_ok, run_recipe
from torch import nn

from workbench.core.events import Log
from workbench.core.pruning import drivers, rounding, structured
from workbench.core.snapshots import load_snapshot
from workbench.core.stages.prune import Params

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def mobilenet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v2(num_classes=10).eval()


def changed_counts(before: nn.Module, after: nn.Module) -> list[int]:
    """Output channels of every convolution or linear layer whose count pruning changed."""
    old = {n: m for n, m in before.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    counts = []
    for n, m in after.named_modules():
        if n in old:
            a, b = (getattr(x, "out_channels", None) or x.out_features for x in (old[n], m))
            if a != b:
                counts.append(b)
    return counts


@dataclass
class FakeSession:
    """What the structured driver reads of the prune stage's session."""
    model: nn.Module
    masks: dict = field(default_factory=dict)
    seed: int = 0
    transform: dict | None = None

    def example_input(self, batch: int = 1) -> torch.Tensor:
        return X[:batch]

    def drop_stale_state(self) -> None:
        pass

    def set_model(self, model: nn.Module, transform: dict | None = None) -> None:
        self.model, self.transform = model, transform


def params(**kw) -> Params:
    return Params(**{"method": "l1", "structured": True, "scope": "layer", "sparsity": 0.5, **kw})


def prune_with(session: FakeSession, p: Params) -> tuple[int, list[Log]]:
    """Resolve round_to as the stage does, prune in one step; (multiple, logs)."""
    logs, steps = [], drivers.round_to(session, p, "classifier.1")
    try:
        while True:
            event = next(steps)
            if isinstance(event, Log):
                logs.append(event)
    except StopIteration as done:
        multiple = done.value
    driver = drivers.StructuredDriver(session, p, "classifier.1", None, multiple)
    list(driver.prune_step(0))
    details = driver.finish(session)
    assert details["round_to"] == multiple
    return multiple, logs


@pytest.mark.parametrize("multiple", [8, "auto"])
def test_kept_channel_counts_are_multiples_and_replay(multiple):
    original = mobilenet()
    session = FakeSession(copy.deepcopy(original))
    chosen, logs = prune_with(session, params(round_to=multiple))
    if multiple == "auto":
        assert chosen in rounding.CANDIDATES
        assert any(f"round_to auto: {chosen} (1: " in log.text for log in logs)     # every candidate's median
    counts = changed_counts(original, session.model)
    assert len(counts) > 20 and all(c % chosen == 0 for c in counts), counts
    fresh = mobilenet()
    structured.replay(fresh, session.transform)
    fresh.load_state_dict(session.model.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(X), session.model(X))


def test_counts_round_to_the_nearest_multiple_not_down():
    """torch-pruning's own rounding goes down: at 50 % and 16, a 24-channel layer would keep none. Here it keeps
    16 (the nearest multiple, at least one), and a 96-channel layer keeps 48."""
    original = mobilenet()
    session = FakeSession(copy.deepcopy(original))
    prune_with(session, params(round_to=16))
    convs = {n: m.out_channels for n, m in session.model.named_modules() if isinstance(m, nn.Conv2d)}
    before = {n: m.out_channels for n, m in original.named_modules() if isinstance(m, nn.Conv2d)}
    assert {before[n]: convs[n] for n in convs if before[n] in (24, 96)} == {24: 16, 96: 48}


def test_auto_measures_only_depthwise_heavy_models():
    calls = []
    steps = rounding.choose(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)), X,
                            lambda m: calls.append(m) or nn.Identity())
    logs = []
    try:
        while True:
            logs.append(next(steps))
    except StopIteration as done:
        assert done.value == 1
    assert calls == [] and "not a depthwise-heavy model" in logs[-1].text
    assert rounding.depthwise_heavy(mobilenet())


@pytest.mark.parametrize(("value", "chosen"), [(4, 4), ("auto", 1)])
def test_a_run_keeps_multiples_of_round_to_and_replays(tmp_path, value, chosen):
    """The prune stage end to end: a resnet is not depthwise-heavy, so auto keeps 1 without measuring."""
    run, events = run_recipe(f"""
model: sample:digits_resnet
stages:
  - {{kind: prune, method: l1, structured: true, scope: layer, sparsity: 0.5, finetune_epochs: 0, round_to: {value}}}
""", tmp_path)
    assert_ok(events)
    model = run.session.model.eval()
    assert all(m.out_channels % chosen == 0 for m in model.modules() if isinstance(m, nn.Conv2d))
    assert run.session.history[-1]["round_to"] == chosen
    reloaded = load_snapshot(run.session.snapshot_paths[-1]).module.eval()
    x = run.session.example_input(4)
    with torch.no_grad():
        assert torch.equal(reloaded(x), model(x))


@pytest.mark.parametrize(("value", "ok"), [("auto", True), (8, True), (1, True), ("fast", False), (0, False)])
def test_round_to_setting_is_checked(tmp_path, value, ok):
    from workbench.core.errors import RecipeError
    from workbench.core.recipe import Recipe
    text = f"model: sample:digits_resnet\nstages:\n  - {{kind: prune, structured: true, round_to: {value}}}\n"
    if ok:
        Recipe.from_text(text)
    else:
        with pytest.raises(RecipeError, match="round_to"):
            Recipe.from_text(text)
