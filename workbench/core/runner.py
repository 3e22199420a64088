"""Runs a recipe: a generator of events, one snapshot per model-changing stage, cancellable at every yield.

    for event in run(recipe, RunOptions(model="sample:digits_mlp", data="sample:digits", out_dir="runs/x")):
        ...

The CLI draws a progress bar from these events; the GUI worker forwards them as Qt signals.
"""
from __future__ import annotations

import random
import tempfile
import threading
import time
import traceback
from collections.abc import Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed, memory_budget, precision, runtimes, stages
from .data import DataSettings, load_data, parse_settings
from .errors import BadInput, Cancelled, StageError, WorkbenchError
from .events import Event, ExportWritten, Log, Metric, Progress, RunFinished, SnapshotSaved, StageFailed, StageStarted
from .measure import Accuracies, measure, measure_accuracy
from .recipe import Recipe, StageSpec
from .run_folder import RunReport, read_run
from .run_handle import RunOptions, RunState
from .session import Session
from .snapshots import folder_name, load_snapshot, read_meta, save_snapshot
from .specs import check_fits, load_model, preprocess_of

PROGRESS_INTERVAL = 0.05  # seconds between forwarded Progress events


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare(recipe: Recipe, options: RunOptions | None = None, cancel: threading.Event | None = None) -> Session:
    """Load model and data, check every stage against them; raises BadInput before anything runs."""
    o = options or RunOptions()
    model, data, device, seed, out_dir = o.model, o.data, o.device, o.seed, o.out_dir
    ddp = distributed.from_environment(device)          # under torchrun: this process's rank
    device = distributed.rank_device(device)
    model_spec = model or recipe.model
    own = not model                     # the recipe's model: its mapping's arch and replace_head apply
    arch = o.arch or (recipe.arch if own else None)
    trust = o.trust                     # a recipe's `trust: true` records the choice but never grants it: a recipe
                                        # can come from anyone, so only --trust (or the GUI's question) lets code run
    replace_head = o.replace_head or (recipe.replace_head and own)
    if not model_spec:
        raise BadInput("no model given: put `model:` in the recipe or pass --model")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BadInput(f"--device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA device is available here")
    precision.check(recipe.precision, device)
    runtime = runtimes.usable(o.runtime or recipe.runtime, "--runtime" if o.runtime else "runtime").name   # installed?
    steps = [(i, spec.kind, spec.params) for i, spec in enumerate(recipe.stages) if spec.enabled]
    stages.check_order(steps, runtime=runtime)   # a stage that cannot follow an earlier one: refused before loading
    seed = recipe.seed if seed is None else seed
    seed_everything(seed)  # untrained architectures are initialised from it
    settings = data_settings(recipe.data, data, model_spec)
    data_spec = settings.spec
    bundle = load_data(settings, seed, preprocess_of(model_spec), device)
    loaded = load_model(model_spec, bundle.input_shape, bundle.num_classes, arch=arch, trust=trust, seed=seed,
                        keep_head=o.keep_head or recipe.keep_head, replace_head=replace_head)
    train_batch = max([bundle.default_batch("train")] + [getattr(s.params, "batch_size", 0) for s in recipe.stages if s.enabled])
    memory_budget.check_run(loaded, bundle, model_spec, train_batch)   # before stage 0 and before the model first runs
    check_fits(loaded.module, bundle, model_spec)
    if any(getattr(v, "is_quantized", False) for v in loaded.module.state_dict().values()):
        stages.check_order(steps, stages.INT8, runtime)      # an int8 snapshot given as the model
    if out_dir is None:
        out_dir = Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{recipe.folder_name}"
    session = Session(loaded, bundle, device, seed, out_dir, (cancel.is_set if cancel else None), trust,
                      recipe=recipe, model_spec=model_spec, data_spec=data_spec, dist=ddp)
    session.runtime = runtime
    for i, spec in enumerate(recipe.stages):
        if spec.enabled:
            check = stages.get(spec.kind).preflight
            if check is not None:
                session.stage_index = i
                check(session, spec.params)
    session.stage_index = -1
    if session.writes:
        check_out_dir(Path(out_dir))  # last: a run refused for anything else leaves no folder behind
    return session


def data_settings(recipe_data: str | dict[str, Any] | None, cli_data: str | None, model_spec: str) -> DataSettings:
    """The run's data settings: the recipe's (a spec or a mapping), the command line's spec replacing its spec."""
    settings = parse_settings(recipe_data, "data") if recipe_data else None
    if cli_data:
        settings = DataSettings(**{**(settings.__dict__ if settings else {}), "spec": cli_data})
    if settings is None and model_spec.startswith("sample:"):
        settings = DataSettings("sample:digits")
    if settings is None:
        raise BadInput("no data given: put `data:` in the recipe or pass --data")
    return settings


def check_out_dir(out: Path) -> None:
    """BadInput unless the run can write into `out` (and no live run is writing there already)."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot write there ({exc.strerror or type(exc).__name__})") from None
    if read_run(out).status == "running":
        raise BadInput(f"--out {out}: another run is writing to this folder right now")


class Run:
    """One execution of a recipe in this process (a RunHandle). Iterate `events()`; `cancel()` from any thread."""

    def __init__(self, recipe: Recipe, options: RunOptions | None = None) -> None:
        self.recipe = recipe
        self.options = options or RunOptions()
        self._cancel = threading.Event()
        self._state = RunState.NEW
        self.session: Session | None = None
        self.report: RunReport | None = None

    def cancel(self) -> None:
        self._cancel.set()

    def kill(self) -> None:
        """A run on a thread of this process cannot be killed: it is cancelled, and ends at its next event."""
        self.cancel()

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def out_dir(self) -> Path | None:
        return self.session.out_dir if self.session else None

    def events(self) -> Iterator[Event]:
        self._state = RunState.RUNNING
        try:
            for event in self._events():
                if isinstance(event, RunFinished):
                    self._state = (RunState.FINISHED if event.ok else
                                   RunState.CANCELLED if self._cancel.is_set() else RunState.FAILED)
                yield event
        finally:
            if self._state is RunState.RUNNING:
                self._state = RunState.CANCELLED if self._cancel.is_set() else RunState.FAILED

    def _events(self) -> Iterator[Event]:
        session = self.session = prepare(self.recipe, self.options, self._cancel)
        assert session.out_dir is not None
        report = self.report = RunReport(session.out_dir, {
            "model": session.model_spec, "data": session.data_spec, "recipe": self.recipe.to_dict(), "runtime": session.runtime,
            "splits": session.data.splits, "data_settings": session.data.describe(),
            "compressed_bytes_note": "size of the smallest file (among the formats listed per snapshot in "
                                     "compressed_format) written, read back and verified",
            **({"resumed_from": dict(self.options.resumed_from)} if self.options.resumed_from else {})}, str(session.device),
            session.dist.world if session.dist else 1, session.dist.backend if session.dist else None, session.writes)
        report.write()
        try:
            yield from self._stages(session, report)
        except GeneratorExit:            # the caller stopped listening: the run ends here, as cancelled
            report.end("cancelled", "stopped before the end")
            raise
        except BaseException:            # Ctrl-C twice, SystemExit: the report must not say "running"
            report.end("interrupted", "interrupted")
            raise

    def _stages(self, session: Session, report: RunReport) -> Iterator[Event]:
        yield Log("info", f"writing to {session.out_dir}")
        for note in session.loaded.meta.get("notes", []):
            yield Log("info", f"{session.model_spec}: {note}")
        try:
            yield from self._snapshot(session, report, 0, "baseline", 0.0, [])
        except Exception as exc:  # noqa: BLE001 - the baseline could not be written or measured
            yield from self._fail(session, report, -1, "baseline", exc)
            return
        done_specs: list[StageSpec] = []
        for i, spec in ((i, s) for i, s in enumerate(self.recipe.stages) if s.enabled):
            stage = stages.get(spec.kind)
            session.stage_index = i
            seed_everything(session.seed + i + 1)
            yield StageStarted(i, spec.kind, len(self.recipe.stages))
            t0 = time.perf_counter()
            try:
                self._agree(session, None)
                session.check_cancel()
                yield from self._forward(session, report, stage.run(session, spec.params), i, spec.title)
                self._agree(session, None)
                done_specs.append(spec)
                if stage.changes_model:
                    yield from self._snapshot(session, report, len(session.snapshots), spec.kind,
                                              time.perf_counter() - t0, done_specs)
                if session.dist is not None:      # every rank continues from rank 0's model
                    session.dist.broadcast_tensors(distributed.model_tensors(session))
            except Exception as exc:  # noqa: BLE001 - every failure keeps the last snapshot
                if session.dist is not None and not (isinstance(exc, WorkbenchError) and exc.agreed):
                    self._agree(session, exc, reraise=False)
                yield from self._fail(session, report, i, spec.kind, exc)
                return
            report.write()
        path = report.end("finished")
        yield RunFinished(str(session.out_dir), str(path), True, "finished")

    # --- internals -----------------------------------------------------------------------------
    @staticmethod
    def _agree(session: Session, exc: BaseException | None, reraise: bool = True) -> None:
        """Under torchrun: every rank says how it stands (ok, cancel asked, failed); if any is not ok, all raise."""
        if session.dist is None:
            return
        if exc is None:
            local = ("cancelled", "stopped by the user") if session.cancel_requested() else ("ok", "")
        else:
            local = ("cancelled" if isinstance(exc, Cancelled) else "failed", getattr(exc, "message", None) or str(exc))
        status, message = session.dist.agree(*local)
        if status == "ok" or not reraise:
            return
        error: WorkbenchError = Cancelled(message) if status == "cancelled" else StageError(f"a process failed: {message}")
        error.agreed = True
        if status == "cancelled":
            session.agreed_cancel = True
        raise error

    @staticmethod
    def _forward(session: Session, report: RunReport, gen: Iterator[Event], index: int, label: str) -> Iterator[Event]:
        last = 0.0
        for event in gen:
            session.check_cancel()
            if isinstance(event, Progress):
                now = time.monotonic()
                if now - last < PROGRESS_INTERVAL and event.done < event.total:
                    continue
                last = now
            elif isinstance(event, Metric):
                report.metric(index + 1, label, event.name, event.step, event.value)
            elif isinstance(event, ExportWritten):
                report.data["exports"] = session.exports
            yield event
        session.check_cancel()

    @staticmethod
    def _forward_progress(gen: Generator[Progress, None, Accuracies]) -> Generator[Progress, None, Accuracies]:
        """The Progress events of a measurement, at most one per PROGRESS_INTERVAL (and the last); its result."""
        last = 0.0
        while True:
            try:
                event = next(gen)
            except StopIteration as end:
                result: Accuracies = end.value
                return result
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL or event.done >= event.total:
                last = now
                yield event

    def _snapshot(self, session: Session, report: RunReport, index: int, stage: str, seconds: float,
                  done_specs: list[StageSpec]) -> Iterator[Event]:
        recipe_so_far = Recipe(list(done_specs), self.recipe.model, self.recipe.data, self.recipe.seed).to_dict()
        yield Progress(0, 1, f"measuring snapshot {index} ({stage})")
        baseline = session.snapshots[0]["dense_bytes"] if session.snapshots else None
        accuracies = None

        def measured(folder: Path) -> dict[str, Any]:
            return {**measure(session, folder, baseline, accuracies), "seconds": seconds}

        path: Path | None = None
        row: dict[str, Any] | None = None
        metrics: dict[str, Any] = {"layers": {}}
        error: Exception | None = None
        if session.writes:
            try:
                accuracies = yield from self._forward_progress(
                    measure_accuracy(session, f"measuring snapshot {index} ({stage})"))
                path = save_snapshot(session, index, stage, recipe_so_far, measured)
                metrics = read_meta(path)["metrics"]
                row = {"index": index, "stage": stage, **{k: v for k, v in metrics.items() if k not in ("layers", "measured_at")},
                       "path": str(path.relative_to(report.out_dir))}
            except Exception as exc:
                if session.dist is None:
                    raise
                error = exc
        if session.dist is not None:       # rank 0 tells the others where the snapshot is (a shared folder)
            shared = session.dist.broadcast_object((str(path) if path else None, row, f"{error}" if error else None))
            if shared[2] is not None:
                if error is not None:
                    raise error
                raise StageError(f"rank 0 could not write snapshot {index}: {shared[2]}")
            path, row = Path(shared[0]), shared[1]
        assert path is not None and row is not None     # written here, or on rank 0 (an error raised above)
        session.snapshots.append(row)
        session.snapshot_paths.append(path)
        report.data["snapshots"] = session.snapshots
        report.write()
        if metrics.get("compressed_failures"):
            reasons = "; ".join(f"{k}: {v}" for k, v in metrics["compressed_failures"].items())
            yield Log("warning", f"snapshot {index}: some compressed formats failed ({reasons}); "
                                 f"kept {metrics.get('compressed_format')}")
        for name, why in (metrics.get("latency_why") or {}).items():
            yield Log("warning", f"snapshot {index}: no {name} latency: {why}")
        yield SnapshotSaved(index, stage, str(path), {**row, "layers": metrics["layers"]})

    @staticmethod
    def _fail(session: Session, report: RunReport, index: int, kind: str, exc: BaseException) -> Iterator[Event]:
        cancelled = isinstance(exc, Cancelled)
        if isinstance(exc, WorkbenchError):
            message, details = exc.message, exc.details or traceback.format_exc()
        elif isinstance(exc, OSError):
            message, details = _os_message(exc), traceback.format_exc()
        else:
            message, details = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        restored = session.snapshot_paths[-1] if session.snapshot_paths else None
        if restored is not None:
            loaded = load_snapshot(restored)
            session.model = loaded.module.to(session.device)
            session.record = loaded.record
            session.masks = loaded.state["masks"]
            session.codebooks = loaded.state["codebooks"]
            session.history = loaded.meta["history"]
        where = f"stage {index + 1} ({kind})" if index >= 0 else "the baseline snapshot"
        current = folder_name(len(session.snapshots) - 1, session.snapshots[-1]["stage"]) if session.snapshots else None
        try:
            path = report.end("cancelled" if cancelled else "failed", f"{where}: {message}", current_snapshot=current)
        except OSError as write_error:   # e.g. the disk is full: say so, the snapshots on disk stay as they are
            path = report.path
            message += f" (report.json could not be updated either: {_os_message(write_error)})"
        yield StageFailed(index, kind, message, details, cancelled)
        yield Log("warning" if cancelled else "error",
                  f"{where} {'cancelled' if cancelled else 'failed'}: {message}; "
                  f"the current model is snapshot {len(session.snapshots) - 1}")
        yield RunFinished(str(session.out_dir), str(path), False, message)


def _os_message(exc: OSError) -> str:
    import errno
    if exc.errno == errno.ENOSPC:
        return f"the disk is full (writing {exc.filename or 'a file'})"
    return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")


def run(recipe: Recipe, options: RunOptions | None = None) -> Iterator[Event]:
    """Convenience: the events of a fresh Run."""
    return Run(recipe, options).events()
