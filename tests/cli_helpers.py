"""The repository root and a runner for the `workbench` command.

`run_cli` runs the command as `python -m workbench ARGS` does, in a process forked from a server that has imported
torch and the command line once (multiprocessing's forkserver): a call starts in a fraction of a second instead of
the ~4 s of a fresh interpreter's imports, and the suite runs dozens of them. Each call gets its own process with the
caller's environment and working folder, and gives back its exit status, stdout and stderr, an uncaught exception
printed as the interpreter prints it. A few tests still start the real interpreter (`test_wheel.py`,
`test_hostile_inputs.py::test_through_python_dash_m`, the benchmarks' subprocesses), so that path stays tested.
"""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from waits import WAIT_S

ROOT = Path(__file__).resolve().parents[1]
_PRELOAD = ["torch", "workbench.cli", "workbench.commands.run", "workbench.commands.inspect"]


def _command(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """In the forked process: `python -m workbench ARGV` in `cwd` with `env`, stdout and stderr into files."""
    import runpy
    import traceback
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdout.flush(), sys.stderr.flush()
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(os.devnull)
    sys.argv = [str(ROOT / "workbench" / "__main__.py"), *argv]
    code = 0
    try:
        runpy.run_module("workbench", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints an uncaught exception
        traceback.print_exc()
        code = 1
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(code)


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = WAIT_S) -> subprocess.CompletedProcess:
    """`workbench ARGS...` (with `env` instead of this process's environment when given); returns a CompletedProcess
    (stdout, stderr, returncode); a command still going after `timeout` seconds is killed (TimeoutExpired)."""
    argv = ["workbench", *args]
    with tempfile.TemporaryDirectory(prefix="wb-cli-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        out.touch(), err.touch()
        process = _context().Process(target=_command, args=(list(args), str(cwd or ROOT), dict(os.environ if env is None else env),
                                                            str(out), str(err)))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(argv, timeout)
        return subprocess.CompletedProcess(argv, process.exitcode, out.read_text(errors="backslashreplace"),
                                           err.read_text(errors="backslashreplace"))
