"""How long Stop holds up the GUI thread, in the real window (offscreen), for a run in a child process and for a
`--nproc 2` run under torchrun.

A QTimer on the GUI thread fires every 10 ms (the probe of bench_gui_responsiveness.py); from the moment Stop is
pressed until the window is idle again, the longest delay of a tick beyond its interval is the longest stall. Two
ways a run ends after Stop:
- `cancel`: the stage sees the cancel flag at its next event and ends by itself;
- `kill`: the stage never looks (its cancel is made a no-op), so KILL_AFTER_MS later the process is killed.
For comparison, in the same process and alternating with the others, `kill on the GUI thread` does what the window
did before: the kill, and the wait for the process to end, on the GUI thread. Target: the longest stall < 100 ms.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_stop_stall.py [--repeat 3]

Written: benchmarks/results/stop_stall.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from bench_gui_responsiveness import Probe, summary  # also sets QT_QPA_PLATFORM and sys.path
from PySide6.QtCore import QEventLoop, QSettings, QTimer

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 100.0
KILL_AFTER_MS = 300
SCENARIOS = [("child", 1, "cancel"), ("child", 1, "kill"), ("child", 1, "kill on the GUI thread"),
             ("--nproc 2", 2, "cancel"), ("--nproc 2", 2, "kill"), ("--nproc 2", 2, "kill on the GUI thread")]


def wait(loop: QEventLoop, ms: int) -> None:
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-stop-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from workbench.core.events import Progress
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow

    app = make_app()  # noqa: F841 - keeps the QApplication alive
    recipe = tmp / "long.yaml"
    recipe.write_text(yaml.safe_dump({"name": "stop", "stages": [{"kind": "train", "epochs": 500}]}))
    window = MainWindow(model="sample:digits_mlp", data="sample:digits", recipe=str(recipe), runs_dir=str(tmp / "runs"))
    shown: list[tuple] = []
    window.show_error = lambda *a: shown.append(a)      # no modal box in a benchmark: a failure ends it below
    window.ask_run_from = lambda: None                  # every run starts over (no "Run from snapshot N?" question)
    window.show()
    loop = QEventLoop()
    while window.browser.info is None:
        wait(loop, 50)
    probe = Probe()
    training = {"on": False}
    window.control.listeners.append(lambda ev: isinstance(ev, Progress) and training.update(on=True))
    window.control.idle.connect(loop.quit)
    stalls: dict[str, list[float]] = {}
    for n in range(args.repeat):
        for what, nproc, how in SCENARIOS:            # alternating: every way once per round
            name = f"{what}: {how}"
            window.process_count.setValue(nproc)
            training["on"] = False
            window.control.KILL_AFTER_MS = KILL_AFTER_MS
            if not window.start_run():
                print(f"{name}: the run did not start", file=sys.stderr)
                return 1
            while not training["on"] and window.control.running():
                wait(loop, 50)
            worker = window.control.worker
            if how != "cancel":
                worker.cancel = lambda: None          # a stage that never looks at the cancel flag
            if how == "kill on the GUI thread":
                def on_gui_thread(then=None, w=worker):          # the previous behaviour: all of it right here
                    w.run.kill()
                    if then is not None:
                        then()
                    w.killed.emit()
                worker.kill = on_gui_thread
            probe.phase = f"{name} #{n}"
            window.stop_run()
            if window.control.running():
                loop.exec()                           # until the control is idle
            if shown:
                print(f"{name}: {shown[-1][0]}: {shown[-1][1]}", file=sys.stderr)
                return 1
            delays = probe.phases.pop(probe.phase, [0.0])
            probe.phase = None
            stalls.setdefault(name, []).append(max(delays))
            wait(loop, 500)
    probe.timer.stop()
    window.close()

    rows = {name: {"max_ms": round(max(v), 1), "median_ms": round(statistics.median(v), 1), "repeats": len(v)}
            for name, v in stalls.items()}
    result = {"interval_ms": 10, "kill_after_ms": KILL_AFTER_MS, "target_ms": TARGET_MS, "rows": rows,
              "idle": summary([0.0]), "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    out = ROOT / "benchmarks" / "results" / "stop_stall.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Longest GUI-thread stall from Stop until idle (timer every 10 ms; {args.repeat} alternating rounds; "
          f"kill after {KILL_AFTER_MS} ms)")
    print(f"{'':<40}{'median':>10}{'max':>10}")
    for name, r in rows.items():
        print(f"{name:<40}{r['median_ms']:>8.1f}ms{r['max_ms']:>8.1f}ms")
    ours = [r["max_ms"] for name, r in rows.items() if "GUI thread" not in name]
    print(f"target < {TARGET_MS:.0f} ms: {'PASS' if max(ours) < TARGET_MS else 'MISS'} "
          f"(load average {result['load_average']} on {os.cpu_count()} CPUs) -> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
