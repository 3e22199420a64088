"""The one training loop every stage uses (train, fine-tuning after pruning or clustering, distillation)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import StageError
from .events import Event, Metric, Progress
from .metrics import accuracy
from .precision import Precision

if TYPE_CHECKING:                      # above this module: for annotations only
    from .session import Session

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
OPTIMIZERS = ["sgd", "adam", "adamw"]
SCHEDULES = ["constant", "cosine", "step"]


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise StageError("the model has no trainable parameters (an int8 model, or every layer frozen): train or "
                         "fine-tune before quantizing to int8")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def make_scheduler(name: str, opt: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total_steps))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, max(1, total_steps // 3), gamma=0.1)
    return None


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


class LossModule(nn.Module):
    """The model, the extra trained parameters (adapters, centroids) and the loss as one module, so that
    DistributedDataParallel sees every parameter the loss trains and averages all their gradients."""

    def __init__(self, model: nn.Module, extra: list[nn.Parameter], loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.extra = nn.ParameterList(extra)
        self.loss_fn = loss_fn

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model, x, y)


def val_accuracy(session: Session) -> float:
    """Top-1 accuracy on val; under torchrun each rank counts its shard and the counts are summed."""
    ddp = session.dist
    if ddp is None:
        return accuracy(session.model, session.data.val, session.device)
    model = session.model.eval()
    correct: float = 0          # counts, summed over the ranks as floats
    total: float = 0
    with torch.inference_mode():
        for x, y in session.data.loader("val", shard=(ddp.rank, ddp.world)):
            correct += int((model(x.to(session.device)).argmax(1).cpu() == y).sum())
            total += len(y)
    correct, total = ddp.sum(correct, total)
    return correct / total if total else 0.0


def fit(session: Session, epochs: int, lr: float, optimizer: str = "adam", schedule: str = "constant",
        weight_decay: float = 0.0, batch_size: int | None = None, loss_fn: LossFn | None = None,
        extra_params: Iterable[nn.Parameter] = (), after_step: Callable[[], None] | None = None,
        label: str = "train", evaluate: bool = True, step_offset: float = 0.0,
        eval_modules: Iterable[nn.Module] = ()) -> Iterator[Event]:
    """Train `session.model` for `epochs`, keeping pruned weights at zero. Yields Progress and Metrics.

    Metrics: `{label}/loss` (mean per epoch, step = epoch) and `{label}/accuracy` on the val split (the
    curve to watch and to decide on; test is only reported).
    Raises StageError on a non-finite loss (the runner then restores the last snapshot).
    `eval_modules` stay in eval mode while the rest trains (frozen parts: batch norms keep their statistics).
    """
    if epochs <= 0:
        return
    model, device, ddp = session.model, session.device, session.dist
    amp = Precision(session.precision, session.channels_last)
    amp.prepare(model, device)
    loss_fn = loss_fn or cross_entropy
    extra_params = list(extra_params)
    opt = make_optimizer(optimizer, [*model.parameters(), *extra_params], lr, weight_decay)
    step_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    if ddp is None:
        loader = session.data.loader("train", batch_size) if batch_size else session.data.train
        step_loss = lambda x, y: loss_fn(model, x, y)
    else:           # each rank takes an interleaved share of every batch; DDP averages the gradients
        total_batch = batch_size or session.data.default_batch("train")
        loader = session.data.loader("train", max(1, total_batch // ddp.world), shard=(ddp.rank, ddp.world))
        step_loss = ddp.wrap(LossModule(model, extra_params, loss_fn))
    steps_per_epoch = max(1, len(loader)) if isinstance(loader, Sized) else 1
    sched = make_scheduler(schedule, opt, epochs * steps_per_epoch)
    session.apply_masks()
    last_metric = 0.0
    eval_modules = list(eval_modules)
    for epoch in range(epochs):
        sampler: Any = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)                  # DistributedSampler: a new shuffle each epoch
        model.train()
        for m in eval_modules:
            m.eval()
        total_loss: float = 0.0
        seen: float = 0             # samples, summed over the ranks as a float
        for step, (x, y) in enumerate(loader):
            x, y = amp.inputs(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
            with amp.autocast():
                loss = step_loss(x, y)
            if ddp is not None:            # agreed by every rank, so none waits on another in a collective
                stop, nonfinite = ddp.flags(session.cancel_requested(), not bool(torch.isfinite(loss)))
                if stop:
                    session.agreed_cancel = True
                    session.check_cancel()
                if nonfinite:
                    loss = torch.tensor(float("nan"))
            if not torch.isfinite(loss):
                raise StageError(f"{label}: loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                                  f"try a lower learning rate (lr={lr})")
            opt.zero_grad(set_to_none=True)
            amp.backward_and_step(loss, opt, session.mask_gradients)
            session.apply_masks()
            if after_step:
                after_step()
            if sched:
                sched.step()
            total_loss += float(loss.detach()) * len(y)
            seen += len(y)
            now = time.monotonic()
            if now - last_metric > 0.25:
                last_metric = now
                yield Metric(f"{label}/batch_loss", float(loss.detach()), step_offset + epoch + (step + 1) / steps_per_epoch)
            yield Progress(epoch * steps_per_epoch + step + 1, epochs * steps_per_epoch,
                           f"{label} epoch {epoch + 1}/{epochs}")
        if ddp is not None:
            total_loss, seen = ddp.sum(total_loss, seen)
        mean_loss = total_loss / max(1, seen)
        yield Metric(f"{label}/loss", mean_loss if math.isfinite(mean_loss) else float("nan"), step_offset + epoch + 1)
        if evaluate:
            yield Metric(f"{label}/accuracy", val_accuracy(session), step_offset + epoch + 1)
    amp.finish(model)
    model.eval()
