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

Custom pruners: layers torch-pruning's tracer cannot follow (ShuffleNet V2's channel shuffle, Swin's
windowed attention and patch merging, MaxViT's attention and window partitions) are traced as single
operations and pruned by `BasePruningFunc` subclasses passed as `customized_pruners=`; see
`tv_pruners` for what each removes and why ShuffleNet's trunk is kept. `make_pruner` and
`replay_history` both take them from `tv_pruners.adapt(model)`, so pruning and replay build the same
graph; `fit_heads` keeps attention widths a multiple of their head count. timm ViTs lose whole attention
heads (`timm_pruners.heads`: torch-pruning's `num_heads=` handling; with global scope one ranking of heads
across attentions), so their inner width shrinks with the channels. Tracing uses a smaller
image when the model gives the same output shape with it (`trace_example`): the coupling of
channels does not depend on the spatial size.
"""
from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ..errors import BadInput, CheckpointError
from ..events import Progress
from ..transforms import register
from . import rounding, tv_pruners
from .timm_pruners import heads as timm_heads

OP = "structured_prune"
TRACE_TIMEOUT = 120.0  # seconds for tracing + a trial prune of a copy
History = list[list[Any]]   # JSON-able: [module name, out-channel pruning?, [indices]] per pruned group, in order
Scheduler = Callable[[float, int], list[float]]   # torch-pruning's `iterative_pruning_ratio_scheduler`


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


TRACE_SIDES = (32, 64, 128)  # smaller image sides tried for tracing


def _output_shapes(out: object) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in tp.utils.flatten_as_list(out) if isinstance(t, torch.Tensor)]


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` on the meta device (shapes only: no data copied, nothing computed), without hooks."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    meta = copy.deepcopy(model, memo)
    for m in meta.modules():
        for name, value in vars(m).items():
            if name.startswith("_forward") and isinstance(value, dict):
                value.clear()
    return meta.eval()


def trace_example(model: nn.Module, example: torch.Tensor) -> torch.Tensor:
    """A smaller image than `example` that the model takes with the same output shapes, else `example`.

    Which channels are coupled does not depend on the spatial size, so torch-pruning can trace a
    32-128 px image instead of the data's (a 224 px ImageNet model traces ~12x faster). The model is
    tried on the meta device (shapes only); a model that needs its exact size (ViT, MaxViT), fails at
    the smaller sizes, gives other output shapes, or uses an op without a meta kernel keeps `example`.
    """
    if example.dim() != 4 or min(example.shape[-2:]) <= TRACE_SIDES[0]:
        return example
    h, w = example.shape[-2:]
    with torch.no_grad():
        try:
            meta = _meta_copy(model)
            full = _output_shapes(meta(example.to("meta")))
        except Exception:  # noqa: BLE001 - e.g. an op without a meta kernel: trace at full size
            return example
        for side in (s for s in TRACE_SIDES if s < min(h, w)):
            size = (max(1, round(h * side / min(h, w))), max(1, round(w * side / min(h, w))))
            try:
                if _output_shapes(meta(torch.empty(*example.shape[:2], *size, device="meta"))) != full:
                    continue
            except Exception:  # noqa: BLE001 - too small for this architecture: try a larger one
                continue
            return torch.randn(*example.shape[:2], *size, dtype=example.dtype, device=example.device)
    return example


def _traced(build: Callable[[torch.Tensor], Any], model: nn.Module, example: torch.Tensor) -> Any:
    """build(trace_example(...)); build(example) if tracing at the smaller size fails."""
    small = trace_example(model, example)
    if small is example:
        return build(example)
    try:
        return build(small)
    except Exception:  # noqa: BLE001 - the smaller image does not trace after all: the data's size
        return build(example)


def make_pruner(model: nn.Module, example: torch.Tensor, importance: Any, sparsity: float, scope: str,
                ratio_dict: dict[nn.Module, float], ignored: list[nn.Module], scheduler: Scheduler | None, steps: int,
                round_to: int = 1, max_layer_sparsity: float = 0.9) -> tp.pruner.MetaPruner:
    """A torch-pruning pruner that reaches `sparsity` (fraction of channels) after `steps` calls to `step()`, each
    group keeping a multiple of `round_to` channels (the nearest: `rounding.fit`)."""
    limit = max(max_layer_sparsity, sparsity, *ratio_dict.values()) if scope == "global" else 1.0
    extra: dict[str, Any] = {"iterative_pruning_ratio_scheduler": scheduler} if scheduler is not None else {}
    adaptation = tv_pruners.adapt(model)
    heads = adaptation.heads()
    if heads:   # whole heads go (at the same ratio as channels), see timm_pruners.heads
        extra.update(num_heads=heads, prune_num_heads=scope != "global", prune_head_dims=False, head_pruning_ratio=sparsity,
                     head_pruning_ratio_dict=_head_ratios(ratio_dict, heads) or None)

    def build(traced: torch.Tensor) -> tp.pruner.MetaPruner:
        with warnings.catch_warnings(), adaptation.tracing():  # "unwrapped parameters": torch-pruning's default
            warnings.simplefilter("ignore", UserWarning)
            return tp.pruner.MetaPruner(
                model, traced, importance=importance, global_pruning=scope == "global", pruning_ratio=sparsity,
                pruning_ratio_dict=ratio_dict or None, max_pruning_ratio=limit, iterative_steps=steps,
                ignored_layers=adaptation.ignore(ignored), **adaptation.kwargs(), **extra)

    pruner = _traced(build, model, example)
    pruner.workbench_round_to = round_to     # kept counts rounded by `rounding.fit` in `step`, not torch-pruning's
    return pruner


def _head_ratios(ratio_dict: dict[nn.Module, float], heads: dict[nn.Module, int]) -> dict[nn.Module, float]:
    """Per-layer overrides that reach an attention's `qkv`: its heads go at that ratio."""
    qkvs = {id(q) for q in heads}
    return {m: r for m, r in ratio_dict.items() if any(id(sub) in qkvs for sub in m.modules())}


def step(pruner: tp.pruner.MetaPruner) -> Iterator[Progress]:
    """One pruning step, a group at a time (so it can be cancelled between groups)."""
    yield Progress(0, 1, "ranking channels")
    timm_heads.plan_step(pruner)
    i = 0
    for i, group in enumerate(pruner.step(interactive=True), 1):
        group = fit_heads(pruner, group)
        if group is not None:
            group = rounding.fit(pruner, group, getattr(pruner, "workbench_round_to", 1))
        if group is not None:
            group.prune()
        yield Progress(i, i + 1, f"removed channels of {i} groups")
    if pruner.global_pruning and pruner.num_heads:     # heads across attentions (timm_pruners.heads)
        for group in timm_heads.global_groups(pruner):
            group.prune()
    sync_attributes(pruner.model)
    timm_heads.after_step(pruner)


def fit_heads(pruner: tp.pruner.MetaPruner, group: Any) -> Any:    # a torch_pruning Group, or None
    """`group`, pruning fewer channels if it reaches attention layers whose width must stay a multiple of
    their head count (swin, MaxViT: see tv_pruners); the most important of its channels are spared.
    None when nothing of the group can go."""
    graph = pruner.DG
    multiple = tv_pruners.channel_multiple(graph, group)
    if multiple == 1:
        return group
    root, fn, idxs = group[0].dep.target.module, group[0].dep.handler, [int(i) for i in group[0].idxs]
    total = graph.get_out_channels(root) if graph.is_out_channel_pruning_fn(fn) else graph.get_in_channels(root)
    keep = -(-(total - len(idxs)) // multiple) * multiple
    if keep >= total:
        return None
    if total - keep != len(idxs):
        importance = pruner.estimate_importance(graph.get_pruning_group(root, fn, list(range(total))))
        if importance is not None:
            idxs.sort(key=lambda i: float(importance[i]))
        group = graph.get_pruning_group(root, fn, sorted(idxs[:total - keep]))
    for dep, dep_idxs in group:   # every attention layer in the group must end up a multiple of its heads
        layer = dep.target.module
        pruner_fn = graph.get_pruner_of_module(layer)
        if isinstance(pruner_fn, tv_pruners.CustomPruner):
            left = pruner_fn.get_out_channels(layer)
            if left is not None and (left - len(dep_idxs)) % pruner_fn.channel_multiple(layer):
                return None
    return group


def sync_attributes(model: nn.Module) -> None:
    """Sizes some architectures keep beside their layers' shapes (torchvision's ViT: `hidden_dim`; timm's
    attention: `num_heads`, `attn_dim`)."""
    timm_heads.sync(model)
    for m in model.modules():
        proj = getattr(m, "conv_proj", None)
        if isinstance(getattr(m, "hidden_dim", None), int) and isinstance(proj, nn.Conv2d):
            m.hidden_dim = proj.out_channels  # type: ignore[assignment]  # the stub takes only Tensor | Module; an int attribute is fine


def history(pruner: tp.pruner.MetaPruner) -> History:
    """JSON-able pruning history: [module name, out-channel pruning?, [indices]] in order."""
    return [[str(name), bool(out), [int(i) for i in idxs]] for name, out, idxs in pruner.pruning_history()]


def shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def transform(model: nn.Module, input_shape: tuple[int, ...], pruning_history: History) -> dict[str, Any]:
    return {"op": OP, "input_shape": list(input_shape), "history": pruning_history, "shapes": shapes(model)}


def replay_history(model: nn.Module, pruning_history: History, example: torch.Tensor) -> nn.Module:
    """Remove the same channels from a model of the original shapes (weights: whatever it holds)."""
    was_training = model.training
    model.eval()
    adaptation = tv_pruners.adapt(model)

    def build(traced: torch.Tensor) -> tp.DependencyGraph:
        with warnings.catch_warnings(), adaptation.tracing():
            warnings.simplefilter("ignore", UserWarning)
            return tp.DependencyGraph().build_dependency(model, example_inputs=traced, verbose=False,
                                                         **adaptation.kwargs())

    graph = _traced(build, model, example)
    graph.load_pruning_history([(name, out, list(idxs)) for name, out, idxs in pruning_history])
    sync_attributes(model)
    model.train(was_training)
    return model


@register(OP)
def replay(model: nn.Module, t: dict[str, Any]) -> nn.Module:
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
        with torch.no_grad():
            for _ in step(pruner):
                pass
        with torch.no_grad():
            got = trial_model(example).shape
        if got != expected:
            raise BadInput(f"structured pruning changed the output shape from {list(expected)} to {list(got)}")
        if sum(p.numel() for p in trial_model.parameters()) == before:
            raise BadInput("torch-pruning found no channels it can remove safely in this model (its dependency "
                           "graph does not cover how the layers are connected, e.g. hard-coded reshapes)")

    bounded(trial, timeout, "tracing the model for structured pruning")


def prune_once(model: nn.Module, example: torch.Tensor, sparsity: float, method: str = "l1",
               ignored_names: list[str] | None = None) -> dict[str, Any]:
    """Remove `sparsity` of every layer's channels in one step (the final classifier's outputs are kept).

    Returns the replayable transform. A convenience for scripts and benchmarks; the `prune` stage
    adds schedules, fine-tuning and calibration-based criteria.
    """
    from .importance import structured_importance
    from .layers import classifier_name
    classifier = classifier_name(model, trace_example(model, example))
    modules = dict(model.named_modules())
    ignored = [modules[n] for n in {*(ignored_names or []), *([classifier] if classifier else [])}]
    pruner = make_pruner(model.eval(), example, structured_importance(method), sparsity, "layer", {}, ignored, None, 1)
    with torch.no_grad():
        for _ in step(pruner):
            pass
    return transform(model, tuple(example.shape[1:]), history(pruner))
