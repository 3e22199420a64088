"""Runs hostile corpus cases (tests/hostile_corpus.py) through `workbench.cli.main` in child processes, each under
a hang guard (a timer per case, and the parent killing a child that stops answering) and a memory cap
(RLIMIT_DATA, so an allocation a bound missed fails instead of eating the machine), and classifies each:

    refused       exit 2, one line, no traceback, no raw control characters
    ran           exit 0 (or a stage that failed saying why) where running is a correct outcome (`Case.ok`)
    payload       a payload's marker file appeared (it ran code)
    outside       a folder outside --out changed (a write through a planted link, into an input's folder ...)
    traceback     a Python traceback, or an exit status other than 0, 1, 2
    hang          still running at the case's time limit
    over-budget   an allocation hit the memory cap (MemoryError, "can't allocate memory")
    unexpected    anything else: accepted where it must be refused, two lines, raw escapes in the message
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from peak_rss import PEAK_RSS_SOURCE

MEMORY_CAP = 3 << 30                  # RLIMIT_DATA of each child: private memory (heap, anonymous maps)
BUDGET = "2G"                         # WORKBENCH_MEMORY_BUDGET: the tool must refuse what it estimates above
FAILURES = ("payload", "outside", "traceback", "hang", "over-budget", "unexpected")
OUTCOMES = ("refused", "ran") + FAILURES

_CHILD = PEAK_RSS_SOURCE + r"""
import contextlib, io, json, os, resource, signal, stat, sys, time, traceback
import warnings; warnings.simplefilter("ignore")
class Hang(BaseException):
    pass
def on_alarm(*_):
    raise Hang()
signal.signal(signal.SIGALRM, on_alarm)
def fingerprint(folders):
    seen = {}
    for top in folders:
        for here, dirs, files in os.walk(top):
            for name in dirs + files:
                p = os.path.join(here, name)
                try:
                    s = os.lstat(p)
                except OSError:
                    continue
                seen[p] = (stat.S_IFMT(s.st_mode), s.st_size, s.st_mtime_ns)
    return seen
def maxrss_mb():
    return peak_rss_bytes() / 2**20
from workbench.cli import main
results = open(sys.argv[2], "a")
for case in json.load(open(sys.argv[1])):
    for m in case["markers"]:
        if os.path.lexists(m):
            os.remove(m)
    before = fingerprint(case["watch"])
    os.chdir(case["cwd"])
    out, err, kind = io.StringIO(), io.StringIO(), None
    start, rss0 = time.monotonic(), maxrss_mb()
    signal.setitimer(signal.ITIMER_REAL, case["timeout"])
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(case["argv"])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except Hang:
        rc, kind = None, "hang"
    except MemoryError:
        rc, kind = None, "over-budget"
    except BaseException:
        rc = None
        err.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    after = fingerprint(case["watch"])
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    results.write(json.dumps({"name": case["name"], "rc": rc, "kind": kind, "stderr": err.getvalue()[-4000:],
                              "stdout": out.getvalue()[-2000:], "seconds": time.monotonic() - start,
                              "peak_mb": maxrss_mb(), "growth_mb": maxrss_mb() - rss0, "changed": changed[:5],
                              "payload": [m for m in case["markers"] if os.path.lexists(m)]}) + "\n")
    results.flush()
"""


def child_env(root: Path) -> dict[str, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2",
           "WORKBENCH_MEMORY_BUDGET": BUDGET, "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONWARNINGS", None)
    return env


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP, MEMORY_CAP))


def _batch(cases: list, root: Path, work: Path) -> list[dict]:
    """Run `cases` in one child (in order); a child that dies or stops answering costs only its current case."""
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    todo = list(cases)
    while todo:
        spec, res = work / f"cases-{len(results)}.json", work / f"results-{len(results)}.jsonl"
        spec.write_text(json.dumps([{"name": c.name, "argv": c.argv, "timeout": c.timeout, "markers": c.markers,
                                     "watch": c.watch, "cwd": str(root / "cwd")} for c in todo]))
        res.write_text("")
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(spec), str(res)], cwd=root / "cwd",
                                env=child_env(root), preexec_fn=_cap, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        done, last = 0, time.monotonic()
        while True:
            lines = [json.loads(x) for x in res.read_text().splitlines() if x.strip()]
            if len(lines) > done:
                done, last = len(lines), time.monotonic()
            if proc.poll() is not None or done == len(todo):
                break
            if time.monotonic() - last > todo[done].timeout + 60 + (30 if done == 0 else 0):  # + the imports
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        proc.wait()
        tail = (proc.stderr.read() if proc.stderr else "")[-3000:]
        results += lines
        if len(lines) < len(todo):             # the child died or hung on todo[len(lines)]
            gone = todo[len(lines)]
            results.append({"name": gone.name, "rc": proc.returncode, "kind": "hang" if proc.returncode == -9 else None,
                            "stderr": tail or f"the process ended with status {proc.returncode}", "stdout": "",
                            "seconds": None, "peak_mb": None, "growth_mb": None, "changed": [], "payload": []})
        todo = todo[len(lines) + 1:] if len(lines) < len(todo) else []
    return results


def run_cases(cases: list, root: Path, isolated: bool = False) -> dict[str, dict]:
    """name -> result (with its `outcome`). `isolated`: one fresh process per case (each case's own peak memory)."""
    work = root / "work"
    raw = [r for c in cases for r in _batch([c], root, work / "each")] if isolated else _batch(cases, root, work)
    by_name = {c.name: c for c in cases}
    return {r["name"]: {**r, "outcome": classify(by_name[r["name"]], r)} for r in raw}


def _memory_error(text: str) -> bool:
    return any(s in text for s in ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc"))


def classify(case, r: dict) -> str:
    err, rc = r["stderr"], r["rc"]
    lines = err.strip().splitlines()
    if r["payload"]:
        return "payload"
    if r["changed"]:
        return "outside"
    if r["kind"] == "hang":
        return "hang"
    if r["kind"] == "over-budget" or _memory_error(err):
        return "over-budget"
    if "Traceback (most recent call last)" in err or rc not in (0, 1, 2):
        return "traceback"
    raw = any(ch in err + r["stdout"] for ch in "\x1b\x00\r")
    if rc == 2 and len(lines) == 1 and not raw:
        return "refused"
    if case.ok and not raw and (rc == 0 or (rc == 1 and "FAILED" in err) or (rc == 2 and len(lines) <= 3)):
        return "ran"
    return "unexpected"


def summary(cases: list, results: dict[str, dict]) -> list[dict]:
    """One row per class: cases, each outcome's count, the largest peak RSS (MB)."""
    rows: dict[str, dict] = {}
    for c in cases:
        row = rows.setdefault(c.cls, {"class": c.cls, "cases": 0, **dict.fromkeys(OUTCOMES, 0), "peak_mb": 0.0})
        r = results[c.name]
        row["cases"] += 1
        row[r["outcome"]] += 1
        row["peak_mb"] = max(row["peak_mb"], r["peak_mb"] or 0.0)
    total = {"class": "all", "cases": len(cases), **{o: sum(r[o] for r in rows.values()) for o in OUTCOMES},
             "peak_mb": max([r["peak_mb"] for r in rows.values()] or [0.0])}
    return [*rows.values(), total]
