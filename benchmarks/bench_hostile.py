"""The whole hostile corpus (tests/hostile_corpus.py): every case, the slow ones too (100,001 class folders,
200,001 images, payload programs at every place a model is accepted, every stage setting at its edges), through
the command line in child processes with a hang guard and a memory cap (RLIMIT_DATA 3 GB, memory budget 2 GB).
Prints one row per class (cases, refused, ran, payload, outside writes, tracebacks, hangs, over the cap,
unexpected, largest peak RSS) and every case that is neither refused nor ran correctly; writes
benchmarks/results/hostile.json. `make test` runs the fast cases (tests/test_hostile_corpus.py).

    python benchmarks/bench_hostile.py [--isolated] [--only CLASS] [--keep DIR]

--isolated runs each case in its own process (each case's own peak memory; slower: an interpreter start each).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from prune_bench_common import ROOT, table, write_result

sys.path.insert(0, str(ROOT / "tests"))

COLUMNS = [("class", "class", ""), ("cases", "cases", "d"), ("refused", "refused", "d"), ("ran", "ran ok", "d"),
           ("payload", "payload ran", "d"), ("outside", "wrote outside", "d"), ("traceback", "tracebacks", "d"),
           ("hang", "hangs", "d"), ("over-budget", "over the cap", "d"), ("unexpected", "unexpected", "d"),
           ("peak_mb", "peak RSS MB", ".0f")]


def main() -> int:
    import hostile_corpus
    from hostile_run import BUDGET, FAILURES, MEMORY_CAP, run_cases, summary
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isolated", action="store_true", help="one process per case")
    ap.add_argument("--only", help="run only this class (e.g. 'model files')")
    ap.add_argument("--keep", help="build the corpus in this folder and keep it (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(args.keep or tmp)
        start = time.monotonic()
        cases = [c for c in hostile_corpus.build(root) if not args.only or c.cls == args.only]
        built = time.monotonic() - start
        results = run_cases(cases, root, isolated=args.isolated)
        seconds = time.monotonic() - start - built
    rows = summary(cases, results)
    print(f"{len(cases)} cases (built in {built:.0f} s, run in {seconds:.0f} s; "
          f"{'one process per case' if args.isolated else 'one process for all, a fresh one after a hang'}; "
          f"RLIMIT_DATA {MEMORY_CAP >> 30} GB, WORKBENCH_MEMORY_BUDGET={BUDGET})\n")
    print(table(rows, COLUMNS))
    bad = [(c, results[c.name]) for c in cases if results[c.name]["outcome"] in FAILURES]
    for case, r in bad:
        last = (r["stderr"].strip().splitlines() or [""])[-1][:200]
        print(f"\n{r['outcome']}: {case.name}\n  workbench {' '.join(a[:80] for a in case.argv)!r}\n  exit {r['rc']}: {last}"
              + (f"\n  changed: {r['changed']}" if r["changed"] else "") + (f"\n  markers: {r['payload']}" if r["payload"] else ""))
    path = write_result("hostile", {
        "isolated": args.isolated, "memory_cap_bytes": MEMORY_CAP, "memory_budget": BUDGET, "seconds": seconds,
        "classes": rows, "failures": [{"case": c.name, "outcome": r["outcome"], "argv": c.argv, "exit": r["rc"],
                                       "stderr": r["stderr"][-1000:], "changed": r["changed"]} for c, r in bad],
        "cases": [{"case": c.name, "outcome": results[c.name]["outcome"], "exit": results[c.name]["rc"],
                   "seconds": results[c.name]["seconds"], "peak_mb": results[c.name]["peak_mb"]} for c in cases]})
    print(f"\nwrote {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
