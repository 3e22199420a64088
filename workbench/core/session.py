"""The state a run carries from stage to stage: the model and what has been done to it."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .data import DataBundle
from .errors import Cancelled
from .io import atomic_write_text
from .models import LoadedModel

if TYPE_CHECKING:
    from .distributed import Dist
    from .recipe import Recipe


class Session:
    """What stages read and mutate.

    `masks` (parameter name -> bool tensor, True = kept) make unstructured pruning stick through
    training; `codebooks` (parameter name -> 1-D centroids) record weight sharing; `record` says how
    to rebuild the architecture; `history` lists what each stage did, for reports and exports.
    """

    def __init__(self, loaded: LoadedModel, data: DataBundle, device: str = "cpu", seed: int = 0,
                 out_dir: str | Path | None = None, cancelled: Callable[[], bool] | None = None,
                 trust: bool = False, recipe: Recipe | None = None, model_spec: str = "",
                 data_spec: str = "", dist: Dist | None = None) -> None:
        self.loaded: LoadedModel = loaded
        self.device: torch.device = torch.device(device)
        self.model: nn.Module = loaded.module.to(self.device)
        self.record: dict[str, Any] = copy.deepcopy(loaded.record)
        self.data: DataBundle = data
        self.seed: int = seed
        self.trust: bool = trust              # files named in the recipe (teachers, students) may run code
        self.recipe: Recipe | None = recipe   # the whole recipe: stages that refer to snapshots by index check them
        self.precision: str = recipe.precision if recipe is not None else "fp32"   # training loops: fp32 | bf16 | fp16
        self.channels_last: bool = recipe.channels_last if recipe is not None else False
        self.runtime: str = recipe.runtime if recipe is not None else "eager"   # deploy runtime measured (core/runtimes)
        self.model_spec: str = model_spec or loaded.spec
        self.data_spec: str = data_spec or data.spec
        self.out_dir: Path | None = Path(out_dir) if out_dir else None
        self._cancelled: Callable[[], bool] = cancelled or (lambda: False)
        self.masks: dict[str, torch.Tensor] = dict(loaded.state.get("masks", {}))
        self.codebooks: dict[str, torch.Tensor] = dict(loaded.state.get("codebooks", {}))
        self.extra: dict[str, Any] = dict(loaded.state.get("extra", {}))
        self.init_state: dict[str, torch.Tensor] | None = loaded.init_state
        self.history: list[dict[str, Any]] = list(loaded.meta.get("history", []))
        self.snapshots: list[dict[str, Any]] = []       # report rows, index = snapshot number
        self.snapshot_paths: list[Path] = []
        self.exports: list[dict[str, Any]] = []
        self.stage_index: int = -1
        self.dist: Dist | None = dist         # this process's rank under torchrun (several processes), else None
        self.agreed_cancel: bool = False

    # --- cancellation -------------------------------------------------------------------------
    def cancel_requested(self) -> bool:
        """This process was asked to stop (Ctrl+C, Stop in the GUI)."""
        return self._cancelled()

    def check_cancel(self) -> None:
        """Raise Cancelled when the run should stop. Under torchrun only once every rank agrees (at a training
        step or a stage's end), so that no rank is left waiting in a collective for one that stopped."""
        if self.agreed_cancel if self.dist is not None else self._cancelled():
            raise Cancelled("stopped by the user")

    @property
    def cancelled(self) -> bool:
        return self._cancelled()

    @property
    def writes(self) -> bool:
        """Whether this process writes files: always, except the ranks other than 0 under torchrun."""
        return self.dist is None or self.dist.is_main

    # --- model helpers ------------------------------------------------------------------------
    def example_input(self, batch: int = 1) -> torch.Tensor:
        return self.data.example_input(batch).to(self.device)

    def apply_masks(self) -> None:
        """Zero every masked-out weight (after an optimiser step, after loading)."""
        if not self.masks:
            return
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, mask in self.masks.items():
                p = params.get(name)
                if p is not None and p.shape == mask.shape:
                    p.mul_(mask.to(p.device, p.dtype))

    def mask_gradients(self) -> None:
        if not self.masks:
            return
        for name, p in self.model.named_parameters():
            mask = self.masks.get(name)
            if mask is not None and p.grad is not None and p.shape == mask.shape:
                p.grad.mul_(mask.to(p.device, p.grad.dtype))

    def drop_stale_state(self) -> None:
        """After a structural change: forget masks and codebooks whose tensors changed shape or vanished."""
        params = dict(self.model.named_parameters())
        self.masks = {k: m for k, m in self.masks.items() if k in params and params[k].shape == m.shape}
        self.codebooks = {k: c for k, c in self.codebooks.items() if k in params}

    def set_model(self, model: nn.Module, transform: dict[str, Any] | None = None) -> None:
        """Replace the model after a structural change; `transform` is appended to the record so it replays."""
        self.model = model.to(self.device)
        if transform is not None:
            self.record.setdefault("transforms", []).append(transform)
        self.drop_stale_state()

    def replace_model(self, loaded: LoadedModel) -> None:
        """Swap in a different architecture (a new student): its own record; masks and codebooks are dropped."""
        self.model = loaded.module.to(self.device)
        self.record = copy.deepcopy(loaded.record)
        self.masks, self.codebooks = {}, {}
        self.init_state = loaded.init_state

    def state(self) -> dict[str, Any]:
        return {"masks": self.masks, "codebooks": self.codebooks, "extra": self.extra}

    def publish(self, name: str, result: dict[str, Any]) -> None:
        """An analysis result: kept with the snapshot (`extra`) and written to `<run folder>/<name>.json`."""
        self.extra[name] = result
        if self.out_dir is not None and self.writes:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / f"{name}.json", json.dumps(result, indent=2))

    def note(self, **entry: Any) -> None:
        """Record what a stage did to the model."""
        self.history.append({"stage": self.stage_index, **entry})
