"""FX tracing patches nn.Module's call and attribute lookup for every thread while it traces: another thread's
forward passes at that moment (the GUI's model panel measuring, a data loader's torchvision transforms) run as usual
instead of failing 'module is not installed as a submodule' or being recorded into the traced graph."""
import threading

import torch
from torch import nn
from waits import WAIT_S

from workbench.core.quantization import int8
from workbench.core.restructure import fold_bn

TRACING, MEASURED = threading.Event(), threading.Event()


class Pausing(nn.Module):
    """Traced in one thread, it waits mid-trace until the other thread has run its own model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(2, 2)

    def forward(self, x):
        TRACING.set()
        MEASURED.wait(WAIT_S)
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def traced_while_another_thread_runs_a_model(trace) -> tuple[object, torch.Tensor]:
    TRACING.clear()
    MEASURED.clear()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(trace()))
    thread.start()
    assert TRACING.wait(WAIT_S)
    torch.manual_seed(0)
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU())       # another model, in this thread, during the trace
    try:
        out = other(torch.ones(2, 3))
    finally:
        MEASURED.set()
        thread.join(WAIT_S)
    return result[0], out


def test_int8_tracing_leaves_other_threads_models_alone():
    torch.manual_seed(0)
    model = Pausing().eval()
    prepared, out = traced_while_another_thread_runs_a_model(lambda: int8.prepare_static(model, torch.zeros(1, 1, 5, 5)))
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    assert torch.equal(out, layer(torch.ones(2, 3)))          # computed, not a Proxy
    targets = {n.target for n in prepared.graph.nodes if n.op == "call_module"}
    assert {"conv", "fc"} <= {t.split(".")[0] for t in targets} and not any(t.startswith(("0", "1")) for t in targets)
    assert int8.convert(prepared)(torch.ones(1, 1, 5, 5)).shape == (1, 2)


def test_fold_bn_tracing_leaves_other_threads_models_alone():
    pairs, out = traced_while_another_thread_runs_a_model(lambda: fold_bn.find_pairs(Pausing()))
    assert pairs == [("conv", "bn")] and out.shape == (2, 4) and isinstance(out, torch.Tensor)
