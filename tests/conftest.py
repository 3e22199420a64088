import os
import signal
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def digits():
    from workbench.core.data import load_data
    return load_data("sample:digits")


@pytest.fixture(autouse=True)
def _own_sigchld_handler():
    """A loader iterated on the main thread installs torch's SIGCHLD handler for the whole process; the GUI iterates
    loaders on worker threads only, so a GUI process never has it. Each test leaves the handler as it found it: a
    core test's handler must not turn a later GUI test's loader shutdown (a slow worker told to stop by closing its
    queue exits 1) into an exception raised on the GUI thread."""
    before = signal.getsignal(signal.SIGCHLD)
    yield
    signal.signal(signal.SIGCHLD, before)
