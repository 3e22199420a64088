"""Export formats: write a model to a file atomically, read it back with a fresh loader, verify outputs.

Each format is a module in this package exposing `FORMAT = Format(...)`. `export_model` is the only
way files are written, so every export is atomic and verified the same way.
"""
from __future__ import annotations

import importlib
import itertools
import math
import pkgutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import BadInput
from ..events import ExportResult
from ..io import atomic_path

if TYPE_CHECKING:
    from ..data import DataBundle
    from ..models import LoadedModel
    from ..session import Session


@dataclass
class ExportSource:
    """What a format needs: the model, how to rebuild it, its compression state, and example inputs."""
    model: nn.Module
    record: dict[str, Any]
    state: dict[str, Any]
    example: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    calib: list[torch.Tensor] = field(default_factory=list)   # calibration inputs (onnx_int8); none: the example

    @classmethod
    def from_session(cls, session: Session, batch: int = 8) -> ExportSource:
        return cls(session.model, session.record, session.state(), session.example_input(batch).cpu(), session.history,
                   calibration_inputs(session.data))

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, data: DataBundle | None = None, batch: int = 8) -> ExportSource:
        """A loaded model spec; examples and calibration inputs come from `data` when its inputs fit the model."""
        fits = data if data is not None and tuple(data.input_shape) == tuple(loaded.input_shape) else None
        example = fits.example_input(batch) if fits is not None else \
            torch.randn(batch, *loaded.input_shape, generator=torch.Generator().manual_seed(0))
        return cls(loaded.module.eval(), loaded.record, loaded.state, example, loaded.meta.get("history", []),
                   calibration_inputs(fits) if fits is not None else [])

    def calibration(self) -> list[torch.Tensor]:
        return self.calib or [self.example]


def calibration_inputs(data: DataBundle, batches: int = 4) -> list[torch.Tensor]:
    """The first few batches of the data's calibration split, on the CPU."""
    return [x.cpu() for x, _ in itertools.islice(iter(data.calib), batches)]


ModelFn = Callable[[torch.Tensor], torch.Tensor]   # what a format's reader gives back: inputs -> outputs


@dataclass
class Format:
    name: str
    suffix: str
    description: str
    write: Callable[[ExportSource, Path], dict[str, Any] | None]   # returns details (e.g. size breakdown)
    read: Callable[[Path, dict[str, Any]], ModelFn]  # (path, record) -> callable model
    tolerance: float = 1e-5           # max |diff| allowed, relative to the largest output (at least 1)
    candidate: bool = False           # may serve as a snapshot's compressed file
    applies: Callable[[ExportSource], str | None] | None = None  # reason it cannot export this model
    min_top1_agreement: float | None = None   # lossy formats: also the share of inputs given the same class
    min_inputs: int = 0                       # ... checked on at least this many inputs
    after_int8: str | None = None     # why a torch.ao int8 model cannot be written (and the fix); None: it can

    def check(self) -> str:
        """What `verified` means for this format, in words (recorded with every export)."""
        diff = "outputs identical" if self.tolerance == 0 else \
            f"max |output diff| <= {self.tolerance:g} x max(1, max |output|)"
        if self.min_top1_agreement is None:
            return diff
        return f"top-1 agreement >= {self.min_top1_agreement:.0%} on {self.min_inputs}+ inputs and {diff}"


def available() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def _module_name(fmt: str) -> str:
    return {"safetensors": "safetensors_format"}.get(fmt, fmt)


def formats() -> dict[str, Format]:
    out = {}
    for name in available():
        mod = importlib.import_module(f"{__name__}.{name}")
        f: Format | None = getattr(mod, "FORMAT", None)
        if f is not None:
            out[f.name] = f
    return out


def get_format(name: str) -> Format:
    fmts = formats()
    if name not in fmts:
        raise BadInput(f"unknown export format {name!r} (known: {', '.join(sorted(fmts))})")
    return fmts[name]


def reference_output(model: nn.Module, example: torch.Tensor) -> torch.Tensor:
    model = model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.inference_mode():
        out: torch.Tensor = model(example.to(device))
        return out.float().cpu()


class _Unverified(Exception):
    """Raised inside the atomic write so that a file that failed its check never gets its final name."""

    def __init__(self, result: ExportResult) -> None:
        super().__init__(result.error)
        self.result = result


def export_model(source: ExportSource, fmt: str, path: str | Path) -> ExportResult:
    """Write, read back, compare; only a verified file is renamed to `path`. Never raises for a failing model:
    the result says what went wrong (and an unverified file is not left behind)."""
    f = get_format(fmt)
    path = Path(path)
    reason = f.applies(source) if f.applies else None
    if reason:
        return ExportResult(fmt, str(path), 0, False, None, error=reason, check=f.check())
    try:
        with atomic_path(path) as tmp:
            try:
                details = f.write(source, tmp) or {}
            except Exception as exc:  # noqa: BLE001 - any failure is reported with the format's name
                raise _Unverified(ExportResult(fmt, str(path), 0, False, None, f"writing {fmt} failed: {type(exc).__name__}: {exc}",
                                               {"traceback": traceback.format_exc()}, f.check())) from None
            result = _verify(f, source, tmp, details)
            result.path = str(path)
            if not result.verified:
                raise _Unverified(result)
    except _Unverified as failed:
        failed.result.error = f"{failed.result.error}; the file was not kept"
        return failed.result
    except OSError as exc:
        return ExportResult(fmt, str(path), 0, False, None, f"writing {fmt} failed: {exc.strerror or exc}", check=f.check())
    return result


def verification_inputs(source: ExportSource, at_least: int) -> torch.Tensor:
    """The example inputs, then calibration inputs, then seeded random ones, until there are `at_least`."""
    parts = [source.example, *[c for c in source.calib]]
    x = torch.cat([p.float() for p in parts])[:max(at_least, len(source.example))]
    if len(x) < at_least:
        noise = torch.randn(at_least - len(x), *x.shape[1:], generator=torch.Generator().manual_seed(0))
        x = torch.cat([x, noise * x.std().clamp_min(1e-3) + x.mean()])
    return x


def _verify(f: Format, source: ExportSource, path: Path, details: dict[str, Any]) -> ExportResult:
    size = path.stat().st_size
    inputs = verification_inputs(source, f.min_inputs) if f.min_inputs else source.example
    try:
        loaded = f.read(path, source.record)
        expected = reference_output(source.model, inputs)
        with torch.inference_mode():
            got = loaded(inputs)
        got = (got[0] if isinstance(got, (tuple, list)) else got).float().cpu()
    except Exception as exc:  # noqa: BLE001 - any failure is reported with the format's name
        return ExportResult(f.name, str(path), size, False, None,
                            f"reading back {f.name} failed: {type(exc).__name__}: {str(exc)[:200]}", details, f.check())
    if got.shape != expected.shape:
        return ExportResult(f.name, str(path), size, False, None, f"read-back output shape {list(got.shape)} "
                            f"differs from the model's {list(expected.shape)}", details, f.check())
    diff = float((got - expected).abs().max()) if got.numel() else 0.0
    problems = []
    if not (math.isfinite(diff) and diff <= f.tolerance * max(1.0, float(expected.abs().max()))):
        problems.append(f"outputs differ by {diff:.3g} (tolerance {f.tolerance:g})")
    if f.min_top1_agreement is not None and got.ndim == 2:
        agree = float((got.argmax(1) == expected.argmax(1)).float().mean())
        details = {**details, "top1_agreement": agree, "verified_on": len(inputs)}
        if agree < f.min_top1_agreement:
            problems.append(f"top-1 agreement {agree:.1%} on {len(inputs)} inputs (needs {f.min_top1_agreement:.0%})")
    return ExportResult(f.name, str(path), size, not problems, diff, "; ".join(problems) or None, details, f.check())
