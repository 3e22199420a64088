"""Per-layer option tables: what each way of compressing one layer is predicted to cost and to lose.

The predicted loss of an option is the mean KL divergence, on the val split, between the model's own
outputs and those of the model with only that layer compressed (no fine-tuning). Unlike val accuracy
(144 images on the digits: steps of 0.7 points, most options exactly 0) it is continuous, and summing
it over layers is the usual additive approximation (as in OBS-style and HAWQ-style allocations).

- Unstructured (`unstructured_options`): every sparsity x bit width of a layer. The layer is pruned
  with the sensitivity analysis' own `unstructured_point` (smallest |w| zeroed), its survivors are
  clustered with the quantize stage's `share_layer` (codebook rounded to float16, as stored), and the
  cost is the bytes the packed format's own codec (`encode_tensor`: the cheapest of its layouts, from
  symbol counts) spends on that tensor: exact for the tensor, before any fine-tuning.
- Structured (`structured_options`): every fraction of a group's output channels removed, with
  `structured_point` (lowest group-L1 channels, on a copy); the cost is measured on that copy by the
  caller (latency, FLOPs or parameters), stored as the change against the unpruned model, so the
  total is predicted as base + the sum of the changes (calibrated against a measurement later).
  A group is a set of layers whose output channels are coupled (a residual stage), pruned as one.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ..events import Progress
from ..packed.tensor_codec import encode_tensor
from ..pruning.layers import Prunable
from ..pruning.sensitivity import structured_point, unstructured_point
from ..quantization.sharing import share_layer

# {"sparsity": s, "bits": b or None}, {"channels": fraction removed} or {"bits": b or None} (JSON-able)
OptionKey = dict[str, Any]
Allocation = dict[str, OptionKey]          # group -> the key of its option
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]     # re-iterable: (inputs, labels) batches


@dataclass
class Option:
    key: OptionKey             # {"sparsity": s, "bits": b or None} or {"channels": fraction removed}
    cost: float                # bytes of the tensor, or the change of the measured cost against the base
    loss: float                # predicted loss: mean KL divergence from the model's own val outputs
    accuracy: float            # val accuracy with only this layer compressed (shown, not optimised)


@dataclass
class OptionTable:
    kind: str                                                  # "unstructured" | "structured"
    options: dict[str, list[Option]] = field(default_factory=dict)   # group -> its options
    members: dict[str, list[str]] = field(default_factory=dict)      # group -> the layers it prunes

    @property
    def groups(self) -> list[str]:
        return list(self.options)

    def costs(self) -> list[list[float]]:
        return [[o.cost for o in self.options[g]] for g in self.groups]

    def losses(self) -> list[list[float]]:
        return [[o.loss for o in self.options[g]] for g in self.groups]

    def allocation(self, choice: Sequence[int]) -> Allocation:
        return {g: dict(self.options[g][k].key) for g, k in zip(self.groups, choice)}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "members": self.members,
                "options": {g: [{**o.key, "cost": o.cost, "loss": o.loss, "val_accuracy": o.accuracy} for o in opts]
                            for g, opts in self.options.items()}}


class Reference:
    """The model's own outputs on a split, to score compressed versions of it against."""

    def __init__(self, model: nn.Module, batches: Batches, device: torch.device | str = "cpu") -> None:
        self.batches, self.device = batches, torch.device(device)     # iterated again for every score, in order
        self.labels = [y.cpu() for _, y in batches]
        self.logp = [torch.log_softmax(out, 1) for out in self._outputs(model)]
        self.accuracy = self._accuracy(self.logp)

    def _outputs(self, model: nn.Module) -> Iterator[torch.Tensor]:
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for x, _ in self.batches:
                    yield model(x.to(self.device)).float().cpu()
        finally:
            model.train(was_training)

    def _accuracy(self, logps: list[torch.Tensor]) -> float:
        total = sum(len(y) for y in self.labels)
        correct = sum(int((lp.argmax(1) == y).sum()) for lp, y in zip(logps, self.labels))
        return correct / total if total else 0.0

    def of(self, model: nn.Module) -> Reference:
        """Another model's outputs on the same batches (computed once)."""
        other = Reference.__new__(Reference)
        other.batches, other.device, other.labels = self.batches, self.device, self.labels
        other.logp = [torch.log_softmax(out, 1) for out in other._outputs(model)]
        other.accuracy = other._accuracy(other.logp)
        return other

    def score(self, model: nn.Module) -> tuple[float, float]:
        """(mean KL(reference || model), accuracy) on the split."""
        logps = [torch.log_softmax(out, 1) for out in self._outputs(model)]
        n = sum(len(lp) for lp in logps)
        kl = sum(float((ref.exp() * (ref - lp)).sum()) for ref, lp in zip(self.logp, logps))
        return max(0.0, kl / max(1, n)), self._accuracy(logps)


def tensor_bytes(name: str, t: torch.Tensor) -> int:
    """Bytes of a tensor's streams in the packed format (its cheapest layout; the header is not counted)."""
    return int(sum(encode_tensor(name, t.detach().cpu()).meta["z"]))


def _clustered(pname: str, weight: torch.Tensor, bits: int, seed: int, max_iter: int,
               codebook_dtype: torch.dtype) -> torch.Tensor:
    """The weight with its non-zero entries replaced by the nearest of 2^bits k-means centroids (as stored)."""
    shared = share_layer(pname, weight, weight != 0, bits, "linear", seed, max_iter)
    return shared.weight(shared.codebook.to(codebook_dtype).float()).to(weight.dtype)


def unstructured_options(model: nn.Module, layers: Mapping[str, Prunable], sparsities: Sequence[float],
                         bits: Sequence[int | None], ref: Reference, seed: int = 0, max_iter: int = 50,
                         codebook_dtype: torch.dtype = torch.float16,
                         cost: Callable[[str, torch.Tensor], float] | None = None,
                         prune_weight: float = 1.0) -> Generator[Progress, None, OptionTable]:
    """Yields Progress; returns the OptionTable (sparsity x bits for every layer; bits None = not clustered).

    loss(s, b) = prune_weight x KL(model || model with the layer pruned to s)
                 + KL(model with the layer pruned to s || the same with its survivors clustered to b bits).
    Pruning and clustering are measured apart, each against what it starts from: their one-shot effects
    on the model's own outputs do not add up within a layer (at high sparsity the pruning change swamps
    the clustering signal and can even cancel it), while the second term sees how much clustering moves
    the function that the survivors carry. `prune_weight` < 1 counts what fine-tuning the survivors
    recovers of pruning damage, which centroid fine-tuning does not recover of clustering damage.
    `cost(parameter name, weight)` defaults to the tensor's bytes in the packed format."""
    table = OptionTable("unstructured")
    cost = cost or tensor_bytes
    total, done = len(layers) * len(sparsities), 0
    for name, layer in layers.items():
        rows: list[Option] = []
        pname = f"{name}.weight"

        def at_every_width(m: nn.Module, s: float, layer: Prunable = layer, rows: list[Option] = rows,
                           pname: str = pname) -> float:
            pruned = layer.weight.detach().clone()
            ploss, acc = ref.score(m)
            local = ref.of(m) if any(b is not None for b in bits) else ref
            try:
                for b in bits:
                    weight, loss = pruned, prune_weight * ploss
                    if b is not None:
                        weight = _clustered(pname, pruned, b, seed, max_iter, codebook_dtype)
                        with torch.no_grad():
                            layer.weight.copy_(weight)
                        loss += local.score(m)[0]
                    rows.append(Option({"sparsity": float(s), "bits": b}, float(cost(pname, weight)), loss, acc))
            finally:
                with torch.no_grad():
                    layer.weight.copy_(pruned)
            return acc

        for s in sparsities:
            yield Progress(done, total, f"options for {name}: sparsity {s:.0%}")
            unstructured_point(model, layer, s, functools.partial(at_every_width, s=s))
            done += 1
        table.options[name], table.members[name] = rows, [name]
    yield Progress(total, total, "option table done")
    return table


def coupled_groups(model: nn.Module, example: torch.Tensor, layers: Sequence[str],
                   never: Sequence[str] = ()) -> dict[str, list[str]]:
    """Groups of `layers` whose output channels torch-pruning removes together, by their first layer.

    A group that reaches a layer in `never` (the final classifier, excluded layers) is left out."""
    trial = copy.deepcopy(model).eval()
    modules = dict(trial.named_modules())
    names = {id(m): n for n, m in modules.items()}
    graph = tp.DependencyGraph().build_dependency(trial, example_inputs=example, verbose=False)
    groups: dict[frozenset[str | None], list[str]] = {}
    for name in layers:
        layer = modules[name]
        group = graph.get_pruning_group(layer, graph.get_pruner_of_module(layer).prune_out_channels, [0])
        members = {names.get(id(dep.target.module)) for dep, _ in group
                   if graph.is_out_channel_pruning_fn(dep.handler)}
        members = {n for n in members if n is not None and n in layers or n in never}
        if members & set(never):
            continue
        groups.setdefault(frozenset(members), [n for n in layers if n in members])
    return {members[0]: members for members in sorted(groups.values(), key=lambda ms: list(layers).index(ms[0]))}


def structured_options(model: nn.Module, groups: dict[str, list[str]], fractions: Sequence[float],
                       example: torch.Tensor, ref: Reference,
                       cost: Callable[[nn.Module], float], base_cost: float) -> Generator[Progress, None, OptionTable]:
    """Yields Progress; returns the OptionTable (fraction of each group's channels removed).

    `cost(model)` measures a pruned copy; an option's cost is its change against `base_cost`, made
    non-increasing in the fraction (removing more never costs more: measurement noise is not a saving)."""
    table = OptionTable("structured", members={g: list(ms) for g, ms in groups.items()})
    total, done = len(groups) * len(fractions), 0
    for group in groups:
        rows: list[Option] = []
        for f in sorted(fractions):
            yield Progress(done, total, f"options for {group}: {f:.0%} of its channels")
            measured: dict[str, float] = {}

            def evaluate(m: nn.Module, measured: dict[str, float] = measured) -> float:
                measured["loss"], measured["accuracy"] = ref.score(m)
                measured["cost"] = cost(m)
                return measured["accuracy"]

            if f > 0:
                structured_point(model, group, f, example, evaluate)
            else:
                measured.update(loss=0.0, accuracy=ref.accuracy, cost=base_cost)
            change = min(0.0, measured["cost"] - base_cost, *(r.cost for r in rows))
            rows.append(Option({"channels": float(f)}, change, measured["loss"], measured["accuracy"]))
            done += 1
        table.options[group] = rows
    yield Progress(total, total, "option table done")
    return table


def width_options(model: nn.Module, layers: Mapping[str, Prunable], widths: Sequence[int | None], batches: Batches,
                  device: torch.device | str = "cpu", seed: int = 0, max_iter: int = 50,
                  codebook_dtype: torch.dtype = torch.float16) -> tuple[OptionTable, float]:
    """Bit widths for layers whose sparsity is settled, on their weights as they are now (after fine-tuning).

    Each option's cost is the exact bytes of the layer's weight and bias in the packed format as the quantize
    stage leaves them (a clustered layer's bias rounded to float16); its loss is KL(model || model with that
    layer clustered). Also returns the bytes those tensors take now, so a measured file size minus it is the
    part of the file the widths do not change."""
    ref = Reference(model, batches, device)
    table, now_bytes = OptionTable("widths"), 0.0
    for name, layer in layers.items():
        pname, now = f"{name}.weight", layer.weight.detach().clone()
        bias = getattr(layer, "bias", None)
        bias_now = tensor_bytes(f"{name}.bias", bias) if isinstance(bias, torch.Tensor) else 0
        bias_half = tensor_bytes(f"{name}.bias", bias.detach().half().float()) if isinstance(bias, torch.Tensor) else 0
        now_bytes += tensor_bytes(pname, now) + bias_now
        rows = []
        try:
            for b in widths:
                weight = now if b is None else _clustered(pname, now, b, seed, max_iter, codebook_dtype)
                with torch.no_grad():
                    layer.weight.copy_(weight)
                loss, acc = ref.score(model) if b is not None else (0.0, ref.accuracy)
                cost = tensor_bytes(pname, weight) + (bias_now if b is None else bias_half)
                rows.append(Option({"bits": b}, float(cost), loss, acc))
        finally:
            with torch.no_grad():
                layer.weight.copy_(now)
        table.options[name], table.members[name] = rows, [name]
    return table, now_bytes
