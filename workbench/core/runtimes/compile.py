"""`compile`: torch.compile with the inductor backend (C++ kernels on the CPU: needs a C++ compiler)."""
from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from ..latency import timing_threads
from .base import Runtime, RuntimeFn

COMPILERS = ("g++", "clang++", "c++")


def compiler() -> str | None:
    """The C++ compiler inductor would use here (CXX, else the first of COMPILERS on the PATH), or None."""
    cxx = os.environ.get("CXX")
    return shutil.which(cxx) if cxx else next((p for p in map(shutil.which, COMPILERS) if p), None)


def check() -> str | None:
    if compiler() is None:
        return "torch.compile (inductor) needs a C++ compiler and none was found (install g++ or set CXX)"
    return None


def prepare(model: nn.Module, example: torch.Tensor) -> RuntimeFn:
    """The model compiled for `example`'s shape, compiled now (by a first call under the timing conditions: one
    thread, inference mode), so that a model inductor cannot compile fails here, not while it is timed. Dynamo's
    caches are reset first: each snapshot is a new model, and past its recompile limit dynamo would run a model in
    eager without saying so."""
    torch.compiler.reset()
    compiled = torch.compile(model.eval(), backend="inductor", dynamic=False)
    with timing_threads(), torch.inference_mode():
        compiled(example)

    def run(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = compiled(x)
        return out
    return run


RUNTIME = Runtime("compile", "torch.compile (inductor)", prepare, check=check, tolerance=1e-4)
