"""One timeout for every test that waits on something (a run, a load, a child process).

Tests never assert on wall-clock time: they wait for a state (a file, a flag, an event) and fail only when it
never comes. Every such wait uses `WAIT_S` / `WAIT_MS`, generous enough for a 2-core machine running two
suites at once; pytest-timeout (`timeout` in pyproject.toml) sits above it, so a wait that expires reports
what it waited for before pytest-timeout would kill the test.
"""
from __future__ import annotations

import time
from collections.abc import Callable

WAIT_S = 600
WAIT_MS = WAIT_S * 1000
POLL_S = 0.1


def wait_for(predicate: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    """Poll `predicate` until it is true; AssertionError naming `what` if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(POLL_S)
