"""Helpers shared by the pruning benchmarks: machine description, tables, JSON results."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict:
    import torch
    import torch_pruning
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "torch_pruning": torch_pruning.__version__,
            "python": platform.python_version(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg": [round(v, 2) for v in os.getloadavg()]}   # 1, 5, 15 min: other jobs on the machine


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table; columns = (key, header, format spec)."""
    def cell(row: dict, key: str, fmt: str) -> str:
        value = row.get(key)
        if value is None:
            return ""
        return format(value, fmt) if fmt and isinstance(value, (int, float)) else str(value)
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r, k, f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path


def alternating_latencies_ms(a, b, x, budget: float = 5.0, most: int = 200) -> tuple[float, float, float, float]:
    """Median batch-1 latency of two models, timed alternately so that outside load hits both alike, under the
    tool's thread policy (`workbench.core.latency.LATENCY_THREADS`, as the runs table and the auto stage)
    (passes for `budget` seconds, at least 3 and at most `most` each): (wall a, wall b, CPU a, CPU b)
    in ms. Both models have run before (no separate warm-up)."""
    import torch

    from workbench.core.latency import timing_threads  # the tool's one thread policy (LATENCY_THREADS)
    wall: tuple[list, list] = ([], [])
    cpu: tuple[list, list] = ([], [])
    with timing_threads(), torch.inference_mode():
        start = time.perf_counter()
        while len(wall[0]) < most and (time.perf_counter() - start < budget or len(wall[0]) < 3):
            for model, w, c in ((a, wall[0], cpu[0]), (b, wall[1], cpu[1])):
                t, p = time.perf_counter(), time.process_time()
                model(x)
                w.append(time.perf_counter() - t)
                c.append(time.process_time() - p)
    return tuple(statistics.median(v) * 1000 for v in (*wall, *cpu))
