"""`workbench run RECIPE`: the pipeline headless, with a progress bar on a terminal and plain lines otherwise."""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
import traceback
from typing import TYPE_CHECKING

from ..core import distributed
from ..core.errors import ErrorInfo
from ..core.events import ExportWritten, Log, Progress, RunError, RunFinished, SnapshotSaved, StageFailed, StageStarted
from ..core.limits import clip
from ..core.recipe import Recipe
from ..core.run_handle import RunOptions
from ..core.runner import Run

if TYPE_CHECKING:
    from ..reporting.tensorboard import TensorBoardLogger


def _n(value, fmt: str = ",", unit: str = "") -> str:
    """A number for a log line; n/a for what could not be measured (null in report.json)."""
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def snapshot_line(m: dict) -> str:
    ratio = _n(m.get("compression_ratio"), ".1f", "x")
    val = f", val {_n(m.get('val_accuracy'), '.4f')}" if "val_accuracy" in m else ""
    return (f"snapshot {m['index']} {m['stage']}: accuracy {_n(m.get('accuracy'), '.4f')}{val}, params {m['params']:,} "
            f"(non-zero {m['nonzero_params']:,}, sparsity {_n(m.get('sparsity'), '.1%')}), FLOPs {_n(m.get('flops'))}, "
            f"compressed {_n(m.get('compressed_bytes'))} B ({m.get('compressed_format')}, {ratio}), "
            f"latency {_n(m.get('latency_ms'), '.3f')} ms{_claims(m)}")


def _claims(m: dict) -> str:
    """The latency's spread (noisy when too wide to mean anything), the stage's own ratio, int8 agreement."""
    eager = (m.get("latency") or {}).get("eager") or {}
    out = f" (p10-p90 {eager['p10_ms']:.3f}-{eager['p90_ms']:.3f}, {eager['repeats']} runs, " \
          f"{eager['threads']} thread{'s' if eager['threads'] != 1 else ''})" if "p10_ms" in eager else ""
    out += " noisy" if eager.get("noisy") else ""
    for name, fig in (m.get("latency") or {}).items():       # the deploy runtime's figure, or why there is none
        if name != "eager":
            out += f", {name} n/a" if not isinstance(fig, dict) or "median_ms" not in fig else \
                (f", {name} {fig['median_ms']:.3f} ms (p10-p90 {fig['p10_ms']:.3f}-{fig['p90_ms']:.3f})"
                 f"{' noisy' if fig.get('noisy') else ''}")
    ratio = m.get("latency_ratio")
    if ratio:
        out += (f", {ratio['runtime']} latency x{ratio['value']:.2f} of the stage input "
                f"(p10-p90 {ratio['p10']:.2f}-{ratio['p90']:.2f}){' noisy' if ratio.get('noisy') else ''}")
    if m.get("agreement") is not None:
        out += f", agreement {m['agreement']:.3f}"
    return out


class Reporter:
    """Progress on a terminal (tqdm), or one plain line per stage / snapshot / few seconds otherwise."""

    def __init__(self, quiet: bool = False, silent: bool = False) -> None:
        self.tty = sys.stderr.isatty() and not silent
        self.quiet = quiet
        self.silent = silent          # a rank other than 0 under torchrun: nothing at all
        self.bar = None
        self.last_line = 0.0
        self.stage = ""

    def say(self, text: str, always: bool = False) -> None:
        """`text` on stderr; with --quiet only what is said `always` (why a stage failed)."""
        if self.silent:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif always or not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def handle(self, event) -> None:
        if isinstance(event, StageStarted):
            self.close_bar()
            self.stage = f"[{event.index + 1}/{event.total_stages} {event.kind}]"
            self.say(f"{self.stage} started")
            if self.tty and not self.quiet:
                from tqdm import tqdm
                self.bar = tqdm(total=100, desc=self.stage, file=sys.stderr, leave=False,
                                bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix}")
        elif isinstance(event, Progress):
            frac = event.done / event.total if event.total else 0.0
            if self.bar is not None:
                self.bar.n = round(100 * frac)
                self.bar.set_postfix_str(event.text, refresh=False)
                self.bar.refresh()
            elif time.monotonic() - self.last_line > 5 and self.stage:
                self.last_line = time.monotonic()
                self.say(f"{self.stage} {frac:4.0%} {event.text}")
        elif isinstance(event, SnapshotSaved):
            self.close_bar()
            self.say(snapshot_line(event.metrics))
        elif isinstance(event, ExportWritten):
            r = event.result
            status = "verified" if r.verified else f"FAILED: {r.error}"
            self.say(f"export {r.format}: {r.path} ({r.bytes:,} bytes) {status}")
        elif isinstance(event, StageFailed):
            self.close_bar()
            self.say(f"{'cancelled' if event.cancelled else 'FAILED'}: stage {event.index + 1} ({event.kind}): "
                     f"{clip(event.message, 2000)}", always=True)   # a quiet run that fails still says why
        elif isinstance(event, Log):
            self.say(event.text if event.level == "info" else f"{event.level}: {event.text}")
        elif isinstance(event, RunFinished):
            self.close_bar()
            if not self.silent:
                print(f"report: {event.report_path}", flush=True)


class EventsFile:
    """Every event appended to a file as one JSON line (`--events FILE`), for a program that follows the run."""

    def __init__(self, path: str) -> None:
        from ..core.io import append_file
        self.fh = append_file(path)  # kept open for the run; never through a link, never a FIFO (exit 2 naming it)

    def handle(self, event) -> None:
        import json

        from ..core.events import to_json
        from ..core.io import jsonable
        self.fh.write(json.dumps(jsonable(to_json(event))) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def main_rank() -> bool:
    """Under torchrun only rank 0 talks to the terminal (and to TensorBoard)."""
    return int(os.environ.get("RANK", "0")) == 0


def launch(args: RunArgs, argv: list[str]) -> int:
    """`workbench run ... --nproc N`: the same command under torchrun on this machine (one process per CPU share or
    GPU). A process that dies ends the run: report.json then says so."""
    from datetime import datetime
    from pathlib import Path

    from ..core.run_folder import mark_ended, read_run
    recipe = Recipe.load(args.recipe)
    out = args.out or str(Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{recipe.folder_name}")
    rest = _without_nproc(argv)
    if not args.out:
        rest += ["--out", out]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
               "-m", "workbench", *rest]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C reaches every rank; they stop together
    try:
        code = subprocess.call(command)
    finally:
        signal.signal(signal.SIGINT, previous)
    if code != 0 and read_run(out).status == "interrupted":     # a rank died and torchrun stopped the others
        mark_ended(out, "failed", f"a process of the distributed run died (torchrun exit code {code}); "
                                  "every snapshot written before is complete")
        print(f"workbench: failed: a process of the distributed run died (exit code {code}); see {out}", file=sys.stderr)
    return 0 if code == 0 else 1


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """`workbench run`'s arguments, typed (the parsed command line, or the GUI's headless fallback)."""

    recipe: str
    model: str | None = None
    data: str | None = None
    out: str | None = None
    arch: str | None = None
    trust: bool = False
    keep_head: bool = False
    replace_head: bool = False
    device: str = "cpu"
    runtime: str | None = None
    seed: int | None = None
    quiet: bool = False
    events: str | None = None
    nproc: int = 1
    tensorboard: str | None = None

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> RunArgs:
        given = vars(ns)
        return cls(**{f.name: given[f.name] for f in dataclasses.fields(cls) if given.get(f.name) is not None})


def run_options(args: RunArgs) -> RunOptions:
    return RunOptions(model=args.model, data=args.data, out_dir=args.out, device=args.device, seed=args.seed,
                      arch=args.arch, trust=args.trust, keep_head=args.keep_head, nproc=args.nproc,
                      replace_head=args.replace_head, runtime=args.runtime)


def run_command(args: RunArgs, argv: list[str] | None = None) -> int:
    events = EventsFile(args.events) if args.events and main_rank() else None   # a GUI follows the run through it
    try:
        if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
            return launch(args, argv if argv is not None else sys.argv[1:])
        return _run(args, events)
    except BaseException as exc:
        if events is not None:          # the follower gets the typed error, not a line of text to parse
            events.handle(RunError(ErrorInfo.of(exc, traceback.format_exc())))
        raise
    finally:
        if events is not None:
            events.close()


def _run(args: RunArgs, events: EventsFile | None) -> int:
    recipe = Recipe.load(args.recipe)
    listeners: list[TensorBoardLogger] = []
    if args.tensorboard and main_rank():      # checked first: without TensorBoard installed, exit 2 before any work
        from ..reporting.tensorboard import TensorBoardLogger
        listeners.append(TensorBoardLogger(args.tensorboard))
    if "TORCHELASTIC_RUN_ID" in os.environ:   # a rank: torchrun killed leaves it nobody to stop it
        from ..core.process_tree import die_with_parent
        die_with_parent()
    job = Run(recipe, run_options(args))
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):  # first Ctrl-C cancels cleanly, the second one aborts
        job.cancel()
        signal.signal(signal.SIGINT, previous)
    signal.signal(signal.SIGINT, on_interrupt)
    reporter = Reporter(args.quiet or not main_rank(), silent=not main_rank())
    ok = False
    try:
        for event in job.events():
            reporter.handle(event)
            sinks: list[TensorBoardLogger | EventsFile] = [*listeners, *([events] if events else [])]
            for listener in sinks:
                listener.handle(event)
            if isinstance(event, RunFinished):
                ok = event.ok
    finally:
        reporter.close_bar()
        for listener in listeners:
            listener.close()
        signal.signal(signal.SIGINT, previous)
        distributed.shutdown(ok)
    return 0 if ok else 1
