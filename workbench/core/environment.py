"""The conditions of a measurement: versions, device, CPU or GPU model, threads, processes."""
from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata
from typing import Any

import torch


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def workbench_version() -> str:
    try:
        return metadata.version("workbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def environment(device: str | torch.device = "cpu", world_size: int = 1, backend: str | None = None) -> dict[str, Any]:
    """What report.json records under `environment` (see INTERFACE.md)."""
    device = torch.device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" and torch.cuda.is_available() else None
    return {
        "torch": torch.__version__,
        "workbench": workbench_version(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_cores": _cores(),
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "world_size": world_size,
        "backend": backend,
    }


def _cores() -> int | None:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
