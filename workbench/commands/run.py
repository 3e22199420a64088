"""`workbench run RECIPE`: the pipeline headless, with a progress bar on a terminal and plain lines otherwise."""
from __future__ import annotations

import signal
import sys
import time

from ..core.events import ExportWritten, Log, Progress, RunFinished, SnapshotSaved, StageFailed, StageStarted
from ..core.recipe import Recipe
from ..core.runner import Run


def _n(value, fmt: str = ",", unit: str = "") -> str:
    """A number for a log line; n/a for what could not be measured (null in report.json)."""
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def snapshot_line(m: dict) -> str:
    ratio = _n(m.get("compression_ratio"), ".1f", "x")
    val = f", val {_n(m.get('val_accuracy'), '.4f')}" if "val_accuracy" in m else ""
    return (f"snapshot {m['index']} {m['stage']}: accuracy {_n(m.get('accuracy'), '.4f')}{val}, params {m['params']:,} "
            f"(non-zero {m['nonzero_params']:,}, sparsity {_n(m.get('sparsity'), '.1%')}), FLOPs {_n(m.get('flops'))}, "
            f"compressed {_n(m.get('compressed_bytes'))} B ({m.get('compressed_format')}, {ratio}), "
            f"latency {_n(m.get('latency_ms'), '.3f')} ms")


class Reporter:
    """Progress on a terminal (tqdm), or one plain line per stage / snapshot / few seconds otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self.bar = None
        self.last_line = 0.0
        self.stage = ""

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif not self.quiet:
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
            self.say(f"{'cancelled' if event.cancelled else 'FAILED'}: stage {event.index + 1} ({event.kind}): {event.message}")
        elif isinstance(event, Log):
            self.say(event.text if event.level == "info" else f"{event.level}: {event.text}")
        elif isinstance(event, RunFinished):
            self.close_bar()
            print(f"report: {event.report_path}", flush=True)


def run_command(args) -> int:
    recipe = Recipe.load(args.recipe)
    listeners = []
    if getattr(args, "tensorboard", None):      # checked first: without TensorBoard installed, exit 2 before any work
        from ..reporting.tensorboard import TensorBoardLogger
        listeners.append(TensorBoardLogger(args.tensorboard))
    job = Run(recipe, model=args.model, data=args.data, out_dir=args.out, device=args.device, seed=args.seed,
              arch=args.arch, trust=args.trust, keep_head=getattr(args, "keep_head", False))
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):  # first Ctrl-C cancels cleanly, the second one aborts
        job.cancel()
        signal.signal(signal.SIGINT, previous)
    signal.signal(signal.SIGINT, on_interrupt)
    reporter = Reporter(getattr(args, "quiet", False))
    ok = False
    try:
        for event in job.events():
            reporter.handle(event)
            for listener in listeners:
                listener.handle(event)
            if isinstance(event, RunFinished):
                ok = event.ok
    finally:
        reporter.close_bar()
        for listener in listeners:
            listener.close()
        signal.signal(signal.SIGINT, previous)
    return 0 if ok else 1
