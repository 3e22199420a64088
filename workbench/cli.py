"""`workbench` command line: the GUI by default; `inspect`, `run`, `export` headless.

Exit status: 0 success, 2 bad input (one line, no traceback), 1 failure inside a stage.
"""
from __future__ import annotations

import argparse
import os
import sys

from .core.errors import BadInput, WorkbenchError
from .core.limits import MAX_SEED, clip

SAMPLE_RECIPE = "deep_compression"          # a ready-made recipe, by name


class _Parser(argparse.ArgumentParser):
    """argparse with the house rule for bad input: one line on stderr (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"workbench: error: {clip(message, 1000)} (see `{self.prog} --help`)\n")


PATH_MAX, NAME_MAX = 4096, 255                        # Linux limits: a longer path cannot name a file
OUTPUTS = ("out", "events", "tensorboard")            # arguments naming a file or folder that is written


def check_arguments(args: argparse.Namespace) -> None:
    """BadInput for an argument no file or spec can have: a NUL byte, a path longer than the system allows,
    control characters in a path to write, an existing output file that is a device, FIFO or socket."""
    for name, values in vars(args).items():
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str):
                continue
            flag = name if name in ("spec", "recipe", "runs_dir", "run_dirs") else "--" + name.replace("_", "-")
            if "\0" in value:
                raise BadInput(f"{flag} {clip(value, 200)}: contains a NUL byte")
            size = len(os.fsencode(value))
            if size > PATH_MAX:
                raise BadInput(f"{flag} {clip(value, 200)}: {size:,} bytes long; a path is at most {PATH_MAX:,}")
            if name in OUTPUTS + ("runs_dir", "run_dirs", "recipe") and any(
                    len(os.fsencode(part)) > NAME_MAX for part in value.split("/")):
                raise BadInput(f"{flag} {clip(value, 200)}: a name in this path is longer than {NAME_MAX} bytes")
            if name in OUTPUTS and clip(value, 4 * PATH_MAX) != value:
                raise BadInput(f"{flag} {clip(value, 200)}: control characters in a path to write")
            if name in OUTPUTS and os.path.exists(value) and not (os.path.isfile(value) or os.path.isdir(value)):
                raise BadInput(f"{flag} {clip(value, 200)}: exists and is not a regular file or folder")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_SEED}] (numpy seeds take 32 bits), got {text[:40]}")
    return value


def _memory_size(text: str) -> str:
    from .core.memory_budget import parse_size
    try:
        parse_size(text, "size")
    except BadInput as exc:
        raise argparse.ArgumentTypeError(exc.message.removeprefix("size: ")) from None
    return text


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="workbench", description="Make neural networks smaller and faster.")
    sub = p.add_subparsers(dest="command")
    g = sub.add_parser("gui", help="open the desktop application (default)")
    g.add_argument("--model"), g.add_argument("--data"), g.add_argument("--recipe")
    g.add_argument("--arch", help="architecture of a bare state dict given with --model (e.g. torchvision:resnet18)")

    i = sub.add_parser("inspect", help="per-layer table: shape, params, non-zeros, sparsity, FLOPs")
    i.add_argument("spec")
    i.add_argument("--arch", help="architecture of a bare state dict (e.g. arch:lenet5)")
    i.add_argument("--trust", action="store_true", help="allow loading a pickled full model")
    i.add_argument("--data", help="data spec, or a recipe file whose data: (settings and preprocessing) is used: "
                   "adds test accuracy and sizes the model")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.add_argument("--seed", type=_seed, default=0, help="seed of random weights (torchvision:, timm:, arch:)")

    r = sub.add_parser("run", help="run a recipe headless")
    r.add_argument("recipe")
    r.add_argument("--model"), r.add_argument("--data"), r.add_argument("--out")
    r.add_argument("--arch"), r.add_argument("--trust", action="store_true")
    r.add_argument("--device", default="cpu")
    r.add_argument("--runtime", metavar="NAME", help="also measure every snapshot's latency on this deploy runtime: "
                   "eager, compile, onnxruntime, openvino, tensorrt (default: the recipe's runtime:, else eager)")
    r.add_argument("--seed", type=_seed, help="random seed, 0 to 2**32-1 (default: the recipe's)")
    r.add_argument("--quiet", action="store_true", help="only the final summary")
    r.add_argument("--events", metavar="FILE", help="append every event to FILE as JSON lines (for programs "
                   "that follow the run, such as the GUI)")
    r.add_argument("--nproc", type=int, default=1, help="run data-parallel in N local processes under torchrun "
                   "(one per GPU with --device cuda; gloo on CPUs)")
    r.add_argument("--tensorboard", metavar="DIR", help="also log metrics, sparsity histograms and the snapshot table "
                   "to TensorBoard event files in DIR (needs: pip install 'workbench[tensorboard]')")

    e = sub.add_parser("export", help="export a snapshot or model to a file, verified by reading it back")
    e.add_argument("spec")
    e.add_argument("--format", required=True, dest="fmt")
    e.add_argument("--out", required=True)
    e.add_argument("--arch"), e.add_argument("--data"), e.add_argument("--trust", action="store_true")
    e.add_argument("--json", action="store_true", help="print the result as JSON (with the file's test accuracy "
                   "when --data is given)")
    for cmd in (g, i, r, e):
        cmd.add_argument("--memory-budget", metavar="SIZE", type=_memory_size, help="refuse (exit 2, with the "
                         "estimate) a model, data set or run estimated to need more memory than SIZE, e.g. 8G, "
                         "512M, 2GiB (default: the memory available now; also WORKBENCH_MEMORY_BUDGET)")
    for cmd in (i, r, e):
        cmd.add_argument("--keep-head", action="store_true", help="pretrained weights for another number of classes "
                         "than the data's: refuse instead of replacing the classifier head")
        cmd.add_argument("--replace-head", action="store_true", help="your own checkpoint's classifier predicts "
                         "another number of classes than the data's: train a new head instead of refusing")
    ls = sub.add_parser("runs", help="list the runs in a folder and their snapshots (status, metrics)")
    ls.add_argument("runs_dir", nargs="?", help="the runs folder (default: ./runs)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of tables")
    rep = sub.add_parser("report", help="one self-contained HTML report of runs (plus report.md and snapshots.csv)")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders; several are compared in one report")
    rep.add_argument("--out", default="report.html", help="the HTML file to write (default: report.html)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "gui"
    try:
        check_arguments(args)
        if getattr(args, "memory_budget", None):
            from .core.memory_budget import set_budget
            set_budget(args.memory_budget)         # in the environment: the processes it starts keep it
        if command == "inspect":
            from .commands.inspect import inspect_command
            return inspect_command(args)
        if command == "run":
            from .commands.run import RunArgs, run_command
            return run_command(RunArgs.from_namespace(args), argv if argv is not None else sys.argv[1:])
        if command == "runs":
            from .commands.runs import runs_command
            return runs_command(args)
        if command == "report":
            from .commands.report import report_command
            return report_command(args)
        if command == "export":
            from .commands.export import export_command
            return export_command(args)
        return gui_command(getattr(args, "model", None), getattr(args, "data", None), getattr(args, "recipe", None),
                           getattr(args, "arch", None))
    except BadInput as exc:
        print(f"workbench: error: {clip(exc.message, 2000)}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"workbench: failed: {clip(exc.message, 2000)}", file=sys.stderr)
        return 1
    except OSError as exc:        # a path the system refuses (too long, a loop of links, not a folder ...)
        where = f"{clip(exc.filename, 100)}: " if exc.filename is not None else ""
        print(f"workbench: error: {where}{clip(exc.strerror or exc, 300)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal", "vnc"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def gui_command(model: str | None, data: str | None, recipe: str | None, arch: str | None = None) -> int:
    if not has_display():
        recipe = recipe or str(SAMPLE_RECIPE)
        print("workbench: no display found (DISPLAY is not set); running the recipe headless instead:\n"
              f"  workbench run {recipe} --model {model or 'sample:digits_mlp'} --data {data or 'sample:digits'}",
              file=sys.stderr)
        from .commands.run import RunArgs, run_command
        return run_command(RunArgs(recipe, model=model or "sample:digits_mlp", data=data or "sample:digits", arch=arch))
    from .ui.app import main as gui_main
    return gui_main(model=model, data=data, recipe=recipe, arch=arch)


if __name__ == "__main__":
    sys.exit(main())
