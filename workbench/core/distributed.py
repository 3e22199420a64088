"""Scale-out under torchrun: the same recipe on several processes, data-parallel with PyTorch's own engine.

`torchrun --nproc-per-node N -m workbench run RECIPE` (or `workbench run --nproc N`) starts N copies of the
runner. Every rank runs the same generator of stages; training loops (`training.fit`) run under
DistributedDataParallel over disjoint shards of each batch (per-rank batch = batch size / N, interleaved, so
one step sees the same samples and averages the same gradient as a single process would), and their loss and
accuracy are all-reduced. Everything that writes or measures (snapshots, the compressed files, latency,
`report.json`, exports) happens on rank 0 alone; after each stage rank 0's model, masks and codebooks are
broadcast so every rank continues from exactly the same model. Cancelling and failing are agreed on by all
ranks at each training step and each stage's end, so no rank waits forever on another. Backend: `nccl` when
the run uses CUDA, `gloo` on CPUs.
"""
from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:                      # above this module: for annotations only
    from .session import Session

TIMEOUT = timedelta(minutes=10)     # a rank that stops answering ends the run after this long


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree(self, status: str, message: str = "") -> tuple[str, str]:
        """Every rank's (status, message); the first that is not "ok" wins on every rank."""
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, (status, message))
        return next(((s, m) for s, m in gathered if s != "ok"), ("ok", ""))

    def flags(self, *values: bool) -> list[bool]:
        """Each flag OR-ed over the ranks (one small all-reduce)."""
        t = torch.tensor([float(v) for v in values], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast_object(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values into every rank's tensors (int8 tensors are left: their conversion is deterministic)."""
        for t in tensors:
            t = t.data if isinstance(t, nn.Parameter) else t
            if t.is_quantized:
                continue
            if t.dtype == torch.bool:
                carrier = t.to(torch.uint8)
                dist.broadcast(carrier, src=0)
                t.copy_(carrier.bool())
            else:
                dist.broadcast(t, src=0)

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def wrap(self, module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.local_rank] if self.backend == "nccl" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def from_environment(device: str) -> Dist | None:
    """The process group torchrun set up (WORLD_SIZE > 1), initialised once; None for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=TIMEOUT)
    return Dist(rank, world, local, backend)


def rank_device(device: str) -> str:
    """cuda -> cuda:LOCAL_RANK under torchrun (one GPU per process)."""
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def model_tensors(session: Session) -> list[torch.Tensor]:
    """Every tensor that makes the session's model what it is: weights and buffers, masks, codebooks."""
    state = list(session.model.state_dict(keep_vars=True).values())
    return [*state, *session.masks.values(), *session.codebooks.values()]


def shutdown(ok: bool = True) -> None:
    """End this rank's part: after a run every rank finished, wait for the others (so that no rank leaves while
    another is still in a collective) and destroy the process group while the interpreter is fully alive; gloo
    work still referenced at interpreter exit aborts the process ("terminate called without an active
    exception"). After a failure, no barrier: the other ranks may never reach it."""
    if not dist.is_initialized():
        return
    gc.collect()                 # DDP wrappers in reference cycles release their reducers' pending work now
    if ok:
        with contextlib.suppress(RuntimeError):
            dist.barrier()
    dist.destroy_process_group()
