"""TaskSlot: submitting a job supersedes the slot's previous one (latest request wins)."""
import threading

import pytest
from waits import WAIT_MS, WAIT_S

from workbench.core.errors import ErrorKind
from workbench.ui.qthreading import tasks
from workbench.ui.qthreading.tasks import TaskSlot, pool, run_task


@pytest.fixture
def idle_pool(qtbot):
    """Start from an idle pool and leave it idle, whatever the test did."""
    qtbot.waitUntil(lambda: pool().activeThreadCount() == 0 and not tasks.busy(), timeout=WAIT_MS)
    yield pool()
    qtbot.waitUntil(lambda: pool().activeThreadCount() == 0 and not tasks.busy(), timeout=WAIT_MS)


def test_a_superseded_queued_job_never_runs(qtbot, idle_pool):
    release, ran, delivered = threading.Event(), [], []
    busy = [threading.Event() for _ in range(idle_pool.maxThreadCount())]

    def block(started):
        started.set()
        release.wait(WAIT_S)

    try:
        for started in busy:                  # every pool thread is taken: the slot's jobs wait in the queue
            run_task(block, started)
        assert all(started.wait(WAIT_S) for started in busy)
        slot = TaskSlot()
        slot.submit(lambda: ran.append("old") or "old", on_done=delivered.append)
        slot.submit(lambda: ran.append("new") or "new", on_done=delivered.append)
    finally:
        release.set()
    qtbot.waitUntil(lambda: delivered == ["new"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not tasks.busy(), timeout=WAIT_MS)
    assert ran == ["new"] and delivered == ["new"] and not slot.pending()


def test_a_superseded_running_job_is_not_delivered(qtbot, idle_pool):
    started, release, delivered, errors = threading.Event(), threading.Event(), [], []

    def slow():
        started.set()
        release.wait(WAIT_S)
        return "old"

    def failing_slow():
        slow()
        raise RuntimeError("old failure")

    slot = TaskSlot()
    try:
        slot.submit(slow, on_done=delivered.append, on_error=lambda e: errors.append(e.message))
        assert started.wait(WAIT_S)           # it runs: it cannot be taken back from the pool
        slot.submit(lambda: "new", on_done=delivered.append, on_error=lambda e: errors.append(e.message))
        qtbot.waitUntil(lambda: delivered == ["new"], timeout=WAIT_MS)
    finally:
        release.set()
    qtbot.waitUntil(lambda: not tasks.busy(), timeout=WAIT_MS)
    assert delivered == ["new"] and not errors
    # a running job's error is dropped the same way, and a cancelled slot delivers nothing at all
    started.clear()
    release.clear()
    try:
        slot.submit(failing_slow, on_done=delivered.append, on_error=lambda e: errors.append(e.message))
        assert started.wait(WAIT_S)
        slot.cancel()
    finally:
        release.set()
    qtbot.waitUntil(lambda: not tasks.busy(), timeout=WAIT_MS)
    assert delivered == ["new"] and not errors and not slot.pending()


def test_the_latest_error_is_delivered(qtbot, idle_pool):
    errors = []

    def fail():
        raise ValueError("bad spec")

    slot = TaskSlot()
    slot.submit(fail, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=WAIT_MS)
    assert [(e.kind, e.message) for e in errors] == [(ErrorKind.CRASHED, "ValueError: bad spec")]      # typed
    assert "Traceback" in errors[0].details and not slot.pending()
