"""Structured pruning: whole neurons, filters and channels removed with torch-pruning.

torch-pruning's dependency graph finds, for each channel, everything coupled to it (the next
layer's inputs, batch-norm entries, residual additions, concatenations) so a group is removed
consistently and the model shrinks physically. The final classifier's outputs (the classes) are
never removed.

Replay: the pruning history (which channel indices of which module were removed, in order) is
recorded as the model transform `{"op": "structured_prune", "input_shape", "history", "shapes"}`;
replaying it on a freshly built model rebuilds the pruned shapes, so snapshots reload without
pickles. Building a dependency graph traces the model; it runs under a time limit so a model that
torch-pruning cannot handle fails with a clear message instead of hanging.
"""
from __future__ import annotations

import copy
import threading
import warnings
from typing import Any, Callable, Iterator

import torch
import torch_pruning as tp
from torch import nn

from ..errors import BadInput, CheckpointError
from ..events import Progress
from ..transforms import register

OP = "structured_prune"
TRACE_TIMEOUT = 120.0  # seconds for tracing + a trial prune of a copy


def bounded(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `fn` in a worker thread; BadInput if it raises or does not finish within `timeout` seconds.

    A thread cannot be killed: a worker that overruns is left to finish in the background (as a
    daemon, on a copy of the model), but the caller gets its answer within the bound.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"bounded: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise BadInput(f"{what} did not finish within {timeout:.0f} s; torch-pruning cannot handle this model "
                       f"in reasonable time (use unstructured pruning, or exclude the layers it gets stuck on)")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, BadInput):
            raise exc
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise BadInput(f"{what} failed: torch-pruning cannot handle this model ({type(exc).__name__}: {first})") from None
    return box.get("value")


def make_pruner(model: nn.Module, example: torch.Tensor, importance, sparsity: float, scope: str,
                ratio_dict: dict[nn.Module, float], ignored: list[nn.Module], scheduler, steps: int,
                round_to: int = 1, max_layer_sparsity: float = 0.9) -> tp.pruner.MetaPruner:
    """A torch-pruning pruner that reaches `sparsity` (fraction of channels) after `steps` calls to `step()`."""
    limit = max(max_layer_sparsity, sparsity, *ratio_dict.values()) if scope == "global" else 1.0
    extra = {"iterative_pruning_ratio_scheduler": scheduler} if scheduler is not None else {}
    with warnings.catch_warnings():  # "unwrapped parameters detected": handled by torch-pruning's default
        warnings.simplefilter("ignore", UserWarning)
        return tp.pruner.MetaPruner(
            model, example, importance=importance, global_pruning=scope == "global", pruning_ratio=sparsity,
            pruning_ratio_dict=ratio_dict or None, max_pruning_ratio=limit, iterative_steps=steps,
            ignored_layers=ignored, round_to=round_to if round_to > 1 else None, **extra)


def step(pruner: tp.pruner.MetaPruner) -> Iterator[Progress]:
    """One pruning step, a group at a time (so it can be cancelled between groups)."""
    yield Progress(0, 1, "ranking channels")
    for i, group in enumerate(pruner.step(interactive=True)):
        group.prune()
        yield Progress(i + 1, i + 2, f"removed channels of {i + 1} groups")
    sync_attributes(pruner.model)


def sync_attributes(model: nn.Module) -> None:
    """Sizes some architectures keep beside their layers' shapes (torchvision's ViT: `hidden_dim`)."""
    for m in model.modules():
        proj = getattr(m, "conv_proj", None)
        if isinstance(getattr(m, "hidden_dim", None), int) and isinstance(proj, nn.Conv2d):
            m.hidden_dim = proj.out_channels


def history(pruner: tp.pruner.MetaPruner) -> list[list]:
    """JSON-able pruning history: [module name, out-channel pruning?, [indices]] in order."""
    return [[str(name), bool(out), [int(i) for i in idxs]] for name, out, idxs in pruner.pruning_history()]


def shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def transform(model: nn.Module, input_shape: tuple[int, ...], pruning_history: list[list]) -> dict:
    return {"op": OP, "input_shape": list(input_shape), "history": pruning_history, "shapes": shapes(model)}


def replay_history(model: nn.Module, pruning_history: list[list], example: torch.Tensor) -> nn.Module:
    """Remove the same channels from a model of the original shapes (weights: whatever it holds)."""
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    graph.load_pruning_history([(name, out, list(idxs)) for name, out, idxs in pruning_history])
    sync_attributes(model)
    model.train(was_training)
    return model


@register(OP)
def replay(model: nn.Module, t: dict) -> nn.Module:
    device = next(iter(model.parameters()), torch.zeros(0)).device
    try:
        replay_history(model, t["history"], torch.randn(1, *t["input_shape"], device=device))
    except Exception as exc:  # noqa: BLE001 - a record that does not fit this architecture
        raise CheckpointError(f"cannot replay structured pruning on this architecture ({type(exc).__name__}: {exc})") from None
    got = shapes(model)
    wrong = [k for k, v in t.get("shapes", {}).items() if got.get(k) != v]
    if wrong:
        raise CheckpointError(f"structured pruning replayed to different shapes ({', '.join(wrong[:4])})")
    return model


def check_prunable(model: nn.Module, example: torch.Tensor, sparsity: float, ignored_names: list[str],
                   timeout: float = TRACE_TIMEOUT) -> None:
    """Trace a copy, prune it at `sparsity` with random importance and run it: BadInput if anything fails."""
    def trial() -> None:
        trial_model = copy.deepcopy(model).eval()
        modules = dict(trial_model.named_modules())
        with torch.no_grad():
            expected = trial_model(example).shape
        pruner = make_pruner(trial_model, example, tp.importance.RandomImportance(), max(sparsity, 0.1), "layer",
                             {}, [modules[n] for n in ignored_names if n in modules], None, 1)
        before = sum(p.numel() for p in trial_model.parameters())
        pruner.step()
        with torch.no_grad():
            got = trial_model(example).shape
        if got != expected:
            raise BadInput(f"structured pruning changed the output shape from {list(expected)} to {list(got)}")
        if sum(p.numel() for p in trial_model.parameters()) == before:
            raise BadInput("torch-pruning found no channels it can remove safely in this model (its dependency "
                           "graph does not cover how the layers are connected, e.g. hard-coded reshapes)")

    bounded(trial, timeout, "tracing the model for structured pruning")


def prune_once(model: nn.Module, example: torch.Tensor, sparsity: float, method: str = "l1",
               ignored_names: list[str] | None = None) -> dict:
    """Remove `sparsity` of every layer's channels in one step (the final classifier's outputs are kept).

    Returns the replayable transform. A convenience for scripts and benchmarks; the `prune` stage
    adds schedules, fine-tuning and calibration-based criteria.
    """
    from .importance import structured_importance
    from .layers import classifier_name
    classifier = classifier_name(model, example)
    modules = dict(model.named_modules())
    ignored = [modules[n] for n in {*(ignored_names or []), *([classifier] if classifier else [])}]
    pruner = make_pruner(model.eval(), example, structured_importance(method), sparsity, "layer", {}, ignored, None, 1)
    with torch.no_grad():
        for _ in step(pruner):
            pass
    return transform(model, tuple(example.shape[1:]), history(pruner))
